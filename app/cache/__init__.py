"""The tiered cache: nodes resolved through a local tier and Redis, stampede-proof
and invalidated across every process. See ``docs/cache.md``."""

from app.cache.decorator import cached
from app.cache.local_storage import LocalStorage
from app.cache.manager import Manager, close_all
from app.cache.node import Node, NodeDefinitionError
from app.cache.orm import invalidate_on_commit
from app.cache.redis_storage import RedisStorage
from app.cache.serializer import JSONSerializer
from app.cache.storage import CacheConfigurationError, NullStorage, Storage

__all__ = [
    "CacheConfigurationError",
    "JSONSerializer",
    "LocalStorage",
    "Manager",
    "Node",
    "NodeDefinitionError",
    "NullStorage",
    "RedisStorage",
    "Storage",
    "cached",
    "close_all",
    "invalidate_on_commit",
]
