"""Nodes and storages are checked early: at class definition and at registration."""

from __future__ import annotations

import types
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import redis
from cache_support import Article, ArticleNode, make_manager
from pydantic import BaseModel

from app.cache import (
    CacheConfigurationError,
    LocalStorage,
    Manager,
    Node,
    NodeDefinitionError,
    NullStorage,
    RedisStorage,
)


def define(storages: object, **attributes: Any) -> type[Node[Article]]:
    namespace: dict[str, Any] = {"storages": storages, **attributes}
    return types.new_class("Defined", (Node[Article],), exec_body=lambda ns: ns.update(namespace))


@pytest.mark.parametrize(
    ("storages", "message"),
    [
        ([], "non-empty list"),
        ("local", "non-empty list"),
        (None, "non-empty list"),
        ([3], "must be a name"),
        ([{"storage": "redis", "ttl": 5}], "positive timedelta"),
        ([{"storage": "redis", "ttl": timedelta(0)}], "positive timedelta"),
        ([{"ttl": timedelta(seconds=1)}], "no storage name"),
        ([{"storage": "redis", "tll": timedelta(seconds=1)}], "must be a name"),
        (["local", "local"], "twice"),
    ],
)
def test_bad_storages_fail_at_class_definition(storages: object, message: str) -> None:
    with pytest.raises(NodeDefinitionError, match=message):
        define(storages)


def test_bad_version_and_negative_ttl_fail_at_class_definition() -> None:
    with pytest.raises(NodeDefinitionError, match="version"):
        define(["local"], version=0)
    with pytest.raises(NodeDefinitionError, match="negative_ttl"):
        define(["local"], negative_ttl=timedelta(0))


def test_a_node_must_name_its_model_type() -> None:
    with pytest.raises(NodeDefinitionError, match=r"Node\[Model\]"):

        class Untyped(Node):  # type: ignore[type-arg]
            storages: ClassVar = ["local"]


def test_unknown_storage_is_a_clear_error_at_validation() -> None:
    manager = Manager()
    manager.register_storage("local", LocalStorage())
    with pytest.raises(CacheConfigurationError) as caught:
        manager.validate(ArticleNode)
    assert str(caught.value) == (
        "ArticleNode.storages names 'redis', which is not registered with this Manager"
        " (registered: ['local'])"
    )


def test_unknown_storage_is_an_error_on_first_use_too() -> None:
    manager = Manager()
    with pytest.raises(CacheConfigurationError, match="registered: none"):
        manager.get(ArticleNode(1))


@pytest.mark.parametrize("name", ["", "a:b", "a|b"])
def test_bad_storage_names_are_refused(name: str) -> None:
    with pytest.raises(CacheConfigurationError, match="must be non-empty"):
        Manager().register_storage(name, LocalStorage())


def test_a_storage_name_cannot_be_registered_twice() -> None:
    manager = Manager()
    manager.register_storage("local", LocalStorage())
    with pytest.raises(CacheConfigurationError, match="already registered"):
        manager.register_storage("local", LocalStorage())


def test_only_storages_can_be_registered() -> None:
    with pytest.raises(CacheConfigurationError, match="neither"):
        Manager().register_storage("x", object())  # type: ignore[arg-type]


def test_storage_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="max_size"):
        LocalStorage(max_size=0)
    with pytest.raises(ValueError, match="ttl must be positive"):
        LocalStorage(ttl=timedelta(0))


def test_all_storage_lists_what_was_registered() -> None:
    manager = Manager()
    local, null = LocalStorage(), NullStorage()
    manager.register_storage("local", local)
    manager.register_storage("redis", null)
    assert manager.all_storage == {"local": local, "redis": null}
    manager.all_storage.clear()
    assert len(manager.all_storage) == 2


def test_removing_from_a_tier_the_node_does_not_use_is_an_error() -> None:
    manager = make_manager()
    with pytest.raises(CacheConfigurationError, match="not kept in a storage named 'elsewhere'"):
        manager.remove(ArticleNode(1), "elsewhere")


def test_node_repr_shows_its_key() -> None:
    assert repr(ArticleNode(7)) == "<ArticleNode 'article:7'>"


def test_keys_carry_prefix_version_and_schema_fingerprint(redis_client: redis.Redis) -> None:
    manager = make_manager()
    manager.get(ArticleNode(1))
    found: list[bytes] = redis_client.keys(
        "cache:article:1*"
    )  # pyright: ignore[reportAssignmentType]
    [key] = [k.decode() for k in found if not k.endswith(b":gen")]
    assert key == f"cache:article:1|v1.{ArticleNode.schema_fingerprint}"


def test_a_changed_model_shape_gets_new_keys() -> None:
    class ArticleV2(BaseModel):
        id: int
        title: str
        subtitle: str

    class ArticleV2Node(Node[ArticleV2]):
        storages: ClassVar = ["local"]

    assert ArticleV2Node.schema_fingerprint != ArticleNode.schema_fingerprint


def test_the_redis_storage_defaults(redis_client: redis.Redis) -> None:
    storage = RedisStorage(redis_client)
    assert storage.ttl == timedelta(minutes=10)
    assert storage.local_copies_safe is False  # not attached to a manager, so no listener
