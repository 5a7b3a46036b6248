"""Course archives: safe archive access, one reader per format, and the writers of backups.

Modules and their public surface (each module's docstring documents it in full):

- :mod:`syncd.archives.safe` — ``open_archive(path, limits) -> Archive``, ``Limits``,
  ``ArchiveError(RejectFile)``, ``member_name``: zip/tar told by magic bytes, every
  refusal (zip-slip, links, devices, bombs, encryption, corruption…) an ArchiveError;
  no extract-all, only ``read``/``open``/``copy_to`` of named members.
- :mod:`syncd.archives.xmlsafe` — ``parse_xml(data, where)`` through defusedxml (no DTD,
  entities or external references), plus ``local``, ``namespace``, ``attr``,
  ``find_local``, ``findall_local``, ``text_of``.
- :mod:`syncd.archives.phpserial` — ``unserialize(data, allowed_classes=…, charset=…)``,
  ``PhpObject``, ``PhpSerialError``: a strict reader of PHP ``serialize()`` output.
- :mod:`syncd.archives.model` — ``CourseArchive``, ``ArchiveSection``,
  ``ArchiveDocument``, ``PathItem``, ``ArchiveActivity``, ``Skipped``.
- :mod:`syncd.archives.detect` — ``detect(archive) -> "mbz" | "scorm12" | "imscc" |
  "chamilo" | "bitrix" | "syncd"`` by content.
- readers ``read_<fmt>(archive, where) -> CourseArchive``: :mod:`.mbz` (``read_mbz``),
  :mod:`.scorm` (``read_scorm12``), :mod:`.imscc` (``read_imscc``), :mod:`.chamilo`
  (``read_chamilo``), :mod:`.bitrix` (``read_bitrix``), :mod:`.native` (``read_syncd``,
  syncd's own lossless backup: ``syncd-course.json`` + ``files/``).
- writers: :mod:`.native` (``write_native``), :mod:`.scorm_writer` (``write_scorm12``),
  :mod:`.backupzip` (``BackupZip``: a zip written to a temp name, renamed when complete;
  ``check_importable``), used by the course_backup processor.
- :mod:`syncd.archives.readers` — ``READERS``, ``read_course(archive, where)`` (detect +
  read), ``open_document`` / ``copy_document`` (member-backed or generated documents),
  ``in_archive_order`` (the order to copy documents in: tar streams read forward once).

Typical use by a processor::

    with open_archive(path, Limits()) as archive:
        course = read_course(archive, str(path))
        for doc in in_archive_order(archive, course.documents):
            sha256 = copy_document(archive, doc, some_private_tmp / "doc")
"""
