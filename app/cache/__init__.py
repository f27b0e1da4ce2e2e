"""The tiered cache: nodes resolved through a local tier and Redis, stampede-proof
and invalidated across every process. See ``docs/cache.md``."""

from app.cache.decorator import cached
from app.cache.local_storage import LocalStorage
from app.cache.manager import Manager, close_all
from app.cache.node import Node, NodeDefinitionError
from app.cache.orm import EvictOnCommit, changed_rows
from app.cache.redis_storage import RedisStorage
from app.cache.serializer import JSONSerializer
from app.cache.storage import CacheConfigurationError, NullStorage, Storage

__all__ = [
    "CacheConfigurationError",
    "EvictOnCommit",
    "JSONSerializer",
    "LocalStorage",
    "Manager",
    "Node",
    "NodeDefinitionError",
    "NullStorage",
    "RedisStorage",
    "Storage",
    "cached",
    "changed_rows",
    "close_all",
]
