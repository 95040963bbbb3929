"""Walking a shard's tar members safely: every member judged from its header before its data is read."""

from __future__ import annotations

import io
import math
import os
import re
import tarfile
import zlib
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple

import numpy as np

from trainset.io.wds.index import PICKLE_SUFFIXES
from trainset.provenance import file_sha256

_NPY_HEADER_MAX = 10_016  # numpy's max_header_size plus magic/version/length fields
_NPY_PROBE = 128  # numpy pads .npy headers to 64 bytes: 128 covers the usual ones in one short read
_HEADERS: dict[bytes, tuple[tuple[int, ...], bool, np.dtype, int]] = {}


def npy_header(data: bytes | bytearray) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, Fortran order, dtype, data offset) of an ``.npy`` member; ValueError if unusable.

    The header is a Python literal parsed by numpy's safe literal parser (no code runs); object
    dtypes, which would need unpickling, are refused. Parsed headers are cached by their bytes,
    since every member of a variable has the same one (parsing costs ~25 us).
    """
    view = memoryview(data)
    if bytes(view[:6]) != b"\x93NUMPY" or len(view) < 12 or view[6] not in (1, 2):
        raise ValueError("no .npy magic of version 1 or 2")
    end = 10 + int.from_bytes(view[8:10], "little") if view[6] == 1 else 12 + int.from_bytes(view[8:12], "little")
    key = bytes(view[:end])
    if key not in _HEADERS:
        head = io.BytesIO(key)
        read = np.lib.format.read_array_header_1_0 if view[6] == 1 else np.lib.format.read_array_header_2_0
        np.lib.format.read_magic(head)
        try:
            shape, fortran, dtype = read(head)
        except (TypeError, SyntaxError) as error:
            raise ValueError(f"bad .npy header ({error})") from error
        if dtype.hasobject:
            raise ValueError("object dtype, which would need unpickling")
        if len(_HEADERS) > 4096:
            _HEADERS.clear()
        _HEADERS[key] = (shape, fortran, dtype, end)
    return _HEADERS[key]


class ShardLayout:
    """What index.json says a shard's members are: key pattern, block bounds, variable specs."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.per_member, self.width = int(meta["samples_per_member"]), int(meta["key_width"])
        self.parts = meta["parts"]
        self.firsts = np.asarray([p["first"] for p in self.parts], dtype=np.int64)
        prefix = "b" if self.per_member > 1 else ""
        self.pattern = re.compile(rf"{prefix}(\d{{{self.width}}})\.([A-Za-z_][A-Za-z0-9_-]*)\.npy\Z")
        self.example = f"{prefix}{'N' * self.width}.<variable>.npy"
        index = {"index": (np.dtype(np.int64), ())} if self.per_member > 1 else {}
        self.specs = [{**index, **{v: (np.dtype(s["dtype"]), tuple(s["shape"])) for v, s in p["variables"].items()}}
                      for p in self.parts]

    def part_of(self, index: int) -> int:
        return int(np.searchsorted(self.firsts, index, side="right") - 1)

    def block_stop(self, start: int, shard_last: int) -> int:
        """One past the last sample of the member group starting at ``start``."""
        part = self.parts[self.part_of(start)]
        return min(start + self.per_member, part["first"] + part["size"], shard_last + 1)


def member_problem(info: Any, layout: ShardLayout) -> str | None:
    """Why a member is refused, judged from its tar header alone (before any data is read)."""
    name = info.name
    if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        return f"member {name!r} is not a regular file (links, devices and folders are refused)"
    if layout.pattern.match(name):  # an expected name has no separator, drive or pickle suffix: done
        return None
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        return f"member {name!r} has an absolute name"
    if ".." in re.split(r"[/\\]", name):
        return f"member {name!r} has a '..' component"
    if name.rsplit(".", 1)[-1].lower() in PICKLE_SUFFIXES:
        return f"member {name!r} is a pickle-bearing file, refused and never unpickled"
    return f"member {name!r} does not match the expected '{layout.example}'"


def shard_file_problem(file: Path, rec: dict[str, Any]) -> str | None:
    """A shard's size or sha256 disagreeing with its index.json record."""
    size = file.stat().st_size
    if size != rec["bytes"]:
        kind = "truncated" if size < rec["bytes"] else "larger than recorded"
        return f"shard {kind}: {size} bytes, index.json says {rec['bytes']}"
    digest = file_sha256(file)
    if digest != rec["sha256"]:
        return f"sha256 mismatch: {digest[:16]}..., index.json says {rec['sha256'][:16]}... (shard changed or corrupt)"
    return None


def walk_shard(file: Path, rec: dict[str, Any], layout: ShardLayout, wanted: set[str] | None,
               check: bool = False) -> Iterator[Any]:
    """Walk a shard's members in order, yielding member groups or problems (str).

    A group is ``(first global index, part number, samples, {var: block})``. Every member is
    judged from its tar header before its data is touched, and members of variables not in
    ``wanted`` are seeked over. With ``check`` only npy headers are read, and the walk goes on
    past refused members so that ``check`` can list them all; readers stop at the first problem.
    """
    try:
        with open(file, "rb") as handle:
            yield from walk_handle(handle, rec, layout, wanted, check)
    except OSError as error:
        yield f"missing, unreadable or not a tar file ({error})"


def walk_handle(handle: Any, rec: dict[str, Any], layout: ShardLayout, wanted: set[str] | None,
                check: bool = False, mapped: Any = None) -> Iterator[Any]:
    """:func:`walk_shard` of an open shard; with ``mapped`` (the same file's bytes, e.g. a read-only
    ``mmap``) the blocks are views into it instead of arrays read from the file (after the same
    checks of every header; the index members are still compared with their keys)."""
    try:
        headers = _Headers(handle)
        yield from _walk(headers, rec, _Walk(handle, layout, wanted, check, mapped, headers.size))
    except OSError as error:
        yield f"missing, unreadable or not a tar file ({error})"


@dataclass(frozen=True)
class _Walk:
    """What each member of one walk is read against (see :func:`walk_handle`): the open shard,
    its mapped bytes (or None), the dataset's layout, the variables wanted, whether only to
    check, and the file's size, which no member may claim bytes beyond."""

    handle: Any
    layout: ShardLayout
    wanted: set[str] | None
    check: bool
    mapped: Any
    file_size: int


class _Head(NamedTuple):
    """The fields of a member's tar header that the walk uses (a ``tarfile.TarInfo`` has them too)."""

    name: str
    type: bytes
    size: int
    offset_data: int


class _Headers:
    """A shard's member headers in order, each read before its member's data.

    The headers trainset writes (ustar regular files, short ASCII names, octal fields, no pax
    records) are parsed here in a few microseconds; the first header that is anything else
    (pax or GNU records, a link, a bad checksum, the end of the archive) hands the rest of the
    shard to :mod:`tarfile`, so every archive reads exactly as tarfile reads it.
    """

    def __init__(self, handle: Any) -> None:
        self.handle, self.offset, self.size = handle, 0, _file_size(handle)
        self.tar: tarfile.TarFile | None = None

    def next(self) -> Any:
        """The next member's header (``_Head`` or ``TarInfo``), or None at the end; may raise TarError."""
        if self.tar is not None:
            info = self.tar.next()
            self.tar.members.clear()  # tarfile keeps every header otherwise
            return info
        if self.offset > self.size:  # what tarfile says when a member's data or padding is cut
            raise tarfile.ReadError("unexpected end of data")
        self.handle.seek(self.offset)
        head = _plain_header(self.handle.read(tarfile.BLOCKSIZE), self.offset)
        if head is not None:
            self.offset = head.offset_data + -(-head.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            return head
        self.handle.seek(self.offset)
        self.tar = tarfile.open(fileobj=self.handle, mode="r:")  # reads this header (or ends)
        return self.next()


_PLAIN = re.compile(rb"(?:[0-7]{7}\0){3}([0-7]{11})\0[0-7]{11}\0([0-7]{6})\0 0", re.DOTALL)
_NO_DEVICE = re.compile(rb"(?:[0-7]{7}\0|\0{8}){2}\0")
_NAME = re.compile(rb"([ -~]{1,99})\0")  # printable ASCII, NUL-ended: nothing for tarfile to decode


def _plain_header(block: bytes, offset: int) -> _Head | None:
    """A ustar regular-file header with canonical fields, as tarfile would parse it; else None.

    Accepted only where tarfile's result is certain: octal mode/uid/gid/size/mtime/checksum
    written as tarfile writes them, type ``0``, an ASCII name without prefix, device fields
    octal or empty, and the (unsigned) checksum right. Everything else goes to tarfile.
    """
    if len(block) != tarfile.BLOCKSIZE:
        return None
    numbers = _PLAIN.match(block, 100, 157)
    if numbers is None or _NO_DEVICE.match(block, 329, 346) is None:
        return None
    name = _NAME.match(block, 0, 100)
    if name is None or not _checksum_right(block, int(numbers[2], 8)):
        return None
    return _Head(name[1].decode("ascii"), tarfile.REGTYPE, int(numbers[1], 8), offset + tarfile.BLOCKSIZE)


def _checksum_right(block: bytes, stored: int) -> bool:
    """Whether the header's byte sum (checksum field as spaces) is ``stored``, as tarfile checks it.

    The sum is below 255 * 65521, so its residues pin it: adler32's low half is 1 + sum mod 65521,
    and the block read as a base-256 number is the sum mod 255 (C speed, not a Python loop).
    """
    target = stored - 256 + sum(block[148:156])
    by_65521 = ((zlib.adler32(block) & 0xFFFF) - 1 - target) % 65521 == 0
    return by_65521 and (int.from_bytes(block, "little") - target) % 255 == 0


def _walk(headers: _Headers, rec: dict[str, Any], walk: _Walk) -> Iterator[Any]:
    layout = walk.layout
    expected, last, group, info, members = rec["first"], rec["last"], None, None, 0
    while True:
        previous = info.name if info is not None else None
        try:
            info = headers.next()
        except (tarfile.TarError, OSError, EOFError) as error:
            yield (f"truncated or corrupt tar at member {previous!r} ({error})" if members
                   else f"missing, unreadable or not a tar file ({error})")
            return
        if info is None:
            break
        members += 1
        problem = member_problem(info, layout)
        if problem:
            yield problem
            continue
        key, var = layout.pattern.match(info.name).groups()
        if group is None or int(key) != group[0]:
            if group is not None:
                yield _close(group, layout)
            if int(key) != expected:
                why = "beyond the shard's samples" if expected > last else f"expected sample {expected} next"
                yield (f"member {info.name!r}: {why} (index.json: this shard holds {rec['first']}..{last}); "
                       "members missing, extra or out of order")
                return
            part, expected = layout.part_of(expected), layout.block_stop(expected, last)
            group = (int(key), part, expected - int(key), {}, set())
        yield from _read_member(walk, info, var, group)
    if group is not None:
        yield _close(group, layout)
    if expected != last + 1:
        yield (f"shard ends at sample {expected - 1} after member {previous!r}, index.json says it holds "
               f"{rec['first']}..{last} (truncated or members missing)")
    elif members != rec["members"]:
        yield f"shard has {members} members, index.json says {rec['members']}"


def _file_size(handle: Any) -> int:
    """Size of the open shard, so a forged member size cannot make us allocate more than the file."""
    try:
        return os.fstat(handle.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        position = handle.tell()
        size = handle.seek(0, 2)
        handle.seek(position)
        return size


def _read_member(walk: _Walk, info: Any, var: str, group: tuple) -> Iterator[str]:
    """Check one member of the current group; read and decode it if wanted (yields problems)."""
    handle, layout, check, mapped = walk.handle, walk.layout, walk.check, walk.mapped
    key, part, n, arrays, seen = group
    where, specs = f"member {info.name!r}", layout.specs[part]
    if var not in specs or var in seen:
        yield f"{where}: " + ("duplicate member" if var in seen else
                              f"variable {var!r} is not stored in part {layout.parts[part]['name']!r}")
        return
    seen.add(var)
    dtype, shape = specs[var]
    shape = ((n,) if layout.per_member > 1 else ()) + shape
    nbytes = math.prod(shape) * dtype.itemsize
    read_all = not check and (walk.wanted is None or var in walk.wanted or var == "index")
    if info.size > _NPY_HEADER_MAX + nbytes:
        yield f"{where}: {info.size} bytes, more than its shape {shape} needs"
        return
    if info.offset_data + info.size > walk.file_size:
        yield f"{where}: claims {info.size} bytes past the end of the shard (truncated or forged header)"
        return
    if not (read_all or check):
        return
    try:
        got_shape, fortran, got_dtype, offset = npy_header(_npy_head(handle, info))
    except ValueError as error:
        yield f"{where}: not a usable .npy member ({error})"
        return
    if (got_dtype, got_shape) != (dtype, shape) or info.size != offset + nbytes:
        yield (f"{where}: {got_dtype.str} {got_shape} in {info.size} bytes, index.json says "
               f"{dtype.str} {shape} (wrong dtype/shape, truncated or padded)")
        return
    if not read_all:
        return
    order = "F" if fortran else "C"
    if mapped is not None:
        array = np.frombuffer(mapped, dtype, math.prod(shape), info.offset_data + offset).reshape(shape, order=order)
    else:
        array = np.empty(shape, dtype, order=order)  # uninitialised: zero-filling would cost a second pass
        handle.seek(info.offset_data + offset)
        if handle.readinto(array if not fortran else array.reshape(-1, order="A").view(np.uint8)) != nbytes:
            yield f"{where}: truncated member data"
            return
    if var == "index":
        if not np.array_equal(array, np.arange(key, key + n)):
            yield f"{where}: global indices do not match its key {key}"
    else:
        arrays[var] = array if layout.per_member > 1 else array[np.newaxis]


def _npy_head(handle: Any, info: Any) -> bytes:
    """The member's ``.npy`` header: a short read, and a second one only for headers longer than usual."""
    handle.seek(info.offset_data)
    head = handle.read(min(info.size, _NPY_PROBE))
    if len(head) >= 12 and head[:6] == b"\x93NUMPY" and head[6] in (1, 2):
        end = 10 + int.from_bytes(head[8:10], "little") if head[6] == 1 else 12 + int.from_bytes(head[8:12], "little")
        if len(head) < end <= min(info.size, _NPY_HEADER_MAX):
            head += handle.read(end - len(head))
    return head


def _close(group: tuple, layout: ShardLayout) -> Any:
    """The finished group, or a problem naming its missing members."""
    key, part, n, arrays, seen = group
    missing = sorted(set(layout.specs[part]) - seen)
    return f"sample {key}: member(s) missing for {missing}" if missing else (key, part, n, arrays)
