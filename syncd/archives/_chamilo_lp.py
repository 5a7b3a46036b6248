"""Chamilo learning paths (``CourseCopyLearnpath`` resources) → sections and path items,
plus the small accessors the Chamilo reader uses on unserialized PHP values."""

from __future__ import annotations

from dataclasses import dataclass, field

from syncd.archives._base import ArchiveError
from syncd.archives._common import LearningPath, web_url
from syncd.archives.model import ArchiveSection, Skipped
from syncd.archives.phpserial import PhpObject, PhpValue

_MAX_DEPTH = 64
_Item = dict[int | str, PhpValue]


def text(value: PhpValue) -> str:
    """A scalar PHP value as stripped text ("" for null, arrays and objects)."""
    if value is None or isinstance(value, dict | PhpObject):
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def prop(value: PhpValue, name: str) -> PhpValue:
    """Property ``name`` of an object, or key ``name`` of an array; None otherwise."""
    if isinstance(value, PhpObject):
        return value.props.get(name)
    if isinstance(value, dict):
        return value.get(name)
    return None


def as_dict(value: PhpValue) -> dict[int | str, PhpValue]:
    """``value`` when it is a PHP array, else an empty one."""
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class PathContext:
    """What building the learning paths needs and collects."""

    path: LearningPath
    doc_ids: dict[str, str]  # document id -> document path
    link_urls: dict[str, str]  # link id -> URL
    skipped: list[Skipped]
    where: str = ""
    link_sections: dict[str, int] = field(default_factory=dict)  # link id -> first section using it


def add_learnpath(ctx: PathContext, number: int, entry: tuple[str, PhpObject]) -> ArchiveSection:
    """Add learning path ``entry`` (id, object) as section ``number`` and its item tree."""
    key, learnpath = entry
    name = text(prop(learnpath, "name")) or f"Learning path {number}"
    folder = ctx.path.add(f"lp_{key}", name, None, "folder", None, number)
    items = [item for item in as_dict(prop(learnpath, "items")).values() if isinstance(item, dict)]
    ids = {text(item.get("id")) for item in items}
    children: dict[str, list[_Item]] = {}
    for item in items:
        parent = text(item.get("parent_item_id"))
        children.setdefault(parent if parent in ids else "0", []).append(item)
    for group in children.values():
        group.sort(key=_display_order)
    _walk(ctx, children, ("0", folder), (key, number), 0, set())
    return ArchiveSection(number, name, text(prop(learnpath, "description")))


def _display_order(item: _Item) -> int:
    shown = text(item.get("display_order"))
    return int(shown) if shown.lstrip("-").isdigit() else 0


def _walk(ctx: PathContext, children: dict[str, list[_Item]], parent: tuple[str, str],
          lp: tuple[str, int], depth: int, seen: set[str]) -> None:
    if depth > _MAX_DEPTH:
        raise ArchiveError(f"{ctx.where}: course_info.dat: learning path items nested deeper "
                           f"than {_MAX_DEPTH}")
    parent_id, parent_key = parent
    for item in children.get(parent_id, []):
        item_id = text(item.get("id"))
        if item_id in seen:
            continue
        seen.add(item_id)
        key = _add_item(ctx, item, parent_key, lp)
        _walk(ctx, children, (item_id, key or parent_key), lp, depth + 1, seen)


def _add_item(ctx: PathContext, item: _Item, parent_key: str, lp: tuple[str, int]) -> str | None:
    """Add one item; its key, or None when its type is not modelled."""
    lp_key, section = lp
    item_id, kind, ref = text(item.get("id")), text(item.get("item_type")), text(item.get("path"))
    title = text(item.get("title")) or f"#{item_id}"
    key = f"lp_{lp_key}/{item_id}"
    if kind == "dir":
        return ctx.path.add(key, title, parent_key, "folder", None, section)
    if kind == "document":
        target = ctx.doc_ids.get(ref)
        if target is None:
            ctx.skipped.append(Skipped(f"learning path item {title}", "its document is not in the backup"))
        return ctx.path.add(key, title, parent_key, "document", target, section)
    if kind == "link":
        url = web_url(ctx.link_urls.get(ref, ""))
        if url is None:
            ctx.skipped.append(Skipped(f"learning path item {title}", "its link has no usable URL"))
            return None
        ctx.link_sections.setdefault(ref, section)
        return ctx.path.add(key, title, parent_key, "link", url, section)
    reason = f"item type {kind or '(none)'} is not modelled"
    ctx.skipped.append(Skipped(f"learning path item {title}", reason))
    return None
