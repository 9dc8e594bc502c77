"""Content-addressed object cache: blake3-keyed, MD5 alongside, verified on the way out."""

from satchel.cache.digest import Digest, Hasher, digest_bytes
from satchel.cache.linking import DEFAULT_LINK_MODES, LINK_MODES
from satchel.cache.objects import Captured, ObjectCache, VerifyReport

__all__ = ["Captured", "DEFAULT_LINK_MODES", "Digest", "Hasher", "LINK_MODES", "ObjectCache", "VerifyReport", "digest_bytes"]
