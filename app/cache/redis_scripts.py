"""The Lua scripts of :class:`~app.cache.redis_storage.RedisStorage`. Each runs
atomically in Redis, so no other client sees a key between two of its steps.

* ``LOCK_SCRIPT``: take ``key:lock`` (``SET NX PX``) and return the key's
  generation, or return the lock's remaining ``PTTL``; :func:`lock_result` reads
  the reply.
* ``STORE_SCRIPT``: store a loaded value only if ``key:gen`` is still the
  generation the loader saw.
* ``UNLOCK_SCRIPT``: release the lock if the token still holds it, and publish
  the fill notice.
* ``INVALIDATE_SCRIPT``: delete the keys and bump their generations (when the
  shared copy goes), and publish them to every process's listener (when the
  local copies go).
"""

from __future__ import annotations

from typing import Any

from app.cache.storage import Lock, LockHeld

LOCK_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('GET', KEYS[2])}
end
return {0, redis.call('PTTL', KEYS[1])}
"""
STORE_SCRIPT = """
local current = redis.call('GET', KEYS[2])
if (current == false and ARGV[3] == '') or current == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
UNLOCK_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""
INVALIDATE_SCRIPT = """
for i, key in ipairs(KEYS) do
  if ARGV[2] == '1' then
    redis.call('DEL', key)
    redis.call('INCR', key .. ':gen')
    redis.call('PEXPIRE', key .. ':gen', ARGV[3])
  end
  if ARGV[4] == '1' then
    redis.call('PUBLISH', ARGV[1], key)
  end
end
return #KEYS
"""


def lock_result(token: str, reply: list[Any]) -> Lock | LockHeld:
    """The reply of ``LOCK_SCRIPT`` run with ``token``."""
    taken, detail = reply
    if taken:
        return Lock(token, detail)
    # PTTL: the holder's remaining milliseconds (-1: no TTL, -2: just released).
    return LockHeld(max(0, int(detail)) / 1000)
