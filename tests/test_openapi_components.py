"""Components are named by their schema's title, not their class's name, so a
model's class can be renamed without changing the document."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pytest
from flask import Flask
from openapi_spec_validator import validate
from pydantic import BaseModel, ConfigDict, Field, computed_field

from app.core.application import APIBlueprint
from app.core.openapi import build_document

REF = "#/components/schemas/"


def document_of(*operations: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    """The document of an app with ``operations``: (method, rule, declaration)."""
    app = Flask(__name__)
    bp = APIBlueprint("things", __name__, url_prefix="/api")
    for number, (method, rule, declaration) in enumerate(operations):

        def view(**_: Any) -> None:
            return None

        view.__name__ = f"operation{number}"
        bp.operation(method, rule, f"operation{number}", **declaration)(view)  # type: ignore[arg-type]
    app.register_blueprint(bp)
    return build_document(app, title="Things", version="1", base_path="/api")


def schemas(document: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = document["components"]["schemas"]
    return result


def response_ref(document: dict[str, Any], path: str, method: str, status: str) -> str:
    response = document["paths"][path][method]["responses"][status]
    ref: str = response["content"]["application/json"]["schema"]["$ref"]
    return ref


class Author(BaseModel):
    id: int
    name: str


class Article(BaseModel):
    id: int
    author: Author


class AuthorOut(BaseModel):
    model_config = ConfigDict(title="Author")

    id: int
    name: str


class ArticleOut(BaseModel):
    model_config = ConfigDict(title="Article")

    id: int
    author: AuthorOut


class ArticleIn(BaseModel):
    model_config = ConfigDict(title="ArticleCreate", extra="forbid")

    author_id: int


def test_a_component_is_named_by_its_title() -> None:
    document = document_of(
        ("GET", "/articles", {"responses": {200: ArticleOut}}),
        ("POST", "/articles", {"body": ArticleIn, "responses": {201: ArticleOut}}),
    )
    validate(document)
    assert {"Article", "Author", "ArticleCreate"} <= schemas(document).keys()
    assert not {"ArticleOut", "AuthorOut", "ArticleIn"} & schemas(document).keys()
    assert response_ref(document, "/articles", "get", "200") == REF + "Article"
    assert schemas(document)["Article"]["properties"]["author"] == {"$ref": REF + "Author"}
    body = document["paths"]["/articles"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": REF + "ArticleCreate"}


def test_renaming_a_class_keeps_the_document_byte_identical() -> None:
    """ArticleOut titled "Article" gives the very document the class Article gives."""
    before = document_of(("GET", "/articles", {"responses": {200: Article}}))
    after = document_of(("GET", "/articles", {"responses": {200: ArticleOut}}))
    assert json.dumps(after) == json.dumps(before)


def test_two_models_with_one_title_are_refused_at_build_time() -> None:
    with pytest.raises(ValueError, match=r"component 'Article'.*ConfigDict\(title=") as caught:
        document_of(
            ("GET", "/articles", {"responses": {200: Article}}),
            ("GET", "/articles/out", {"responses": {200: ArticleOut}}),
        )
    message = str(caught.value)
    assert f"{__name__}.Article " in message
    assert f"{__name__}.ArticleOut " in message


class ArticleHit(ArticleOut):
    score: float


class TitledArticleHit(ArticleOut):
    model_config = ConfigDict(title="ArticleHit")

    score: float


def test_a_subclass_inherits_its_bases_title_so_needs_its_own() -> None:
    articles = ("GET", "/articles", {"responses": {200: ArticleOut}})
    with pytest.raises(ValueError, match="component 'Article'"):
        document_of(articles, ("GET", "/hits", {"responses": {200: ArticleHit}}))
    document = document_of(articles, ("GET", "/hits", {"responses": {200: TitledArticleHit}}))
    assert response_ref(document, "/hits", "get", "200") == REF + "ArticleHit"


def first_thing() -> type[BaseModel]:
    class Thing(BaseModel):
        id: int

    return Thing


def second_thing() -> type[BaseModel]:
    class Thing(BaseModel):
        name: str

    return Thing


def test_two_classes_of_one_name_are_refused_at_build_time() -> None:
    """pydantic would name them apart by module and qualname; titles cannot."""
    with pytest.raises(ValueError, match="component 'Thing'") as caught:
        document_of(
            ("GET", "/first", {"responses": {200: first_thing()}}),
            ("GET", "/second", {"responses": {200: second_thing()}}),
        )
    assert "first_thing.<locals>.Thing" in str(caught.value)
    assert "second_thing.<locals>.Thing" in str(caught.value)


def test_two_classes_of_one_name_and_one_schema_are_one_component() -> None:
    """As pydantic has them (identical schemas are one definition)."""
    document = document_of(
        ("GET", "/first", {"responses": {200: first_thing()}}),
        ("GET", "/again", {"responses": {200: first_thing()}}),
    )
    assert response_ref(document, "/first", "get", "200") == REF + "Thing"
    assert response_ref(document, "/again", "get", "200") == REF + "Thing"


class Cat(BaseModel):
    model_config = ConfigDict(title="Kitty")

    kind: Literal["cat"]


class Dog(BaseModel):
    kind: Literal["dog"]


class Pet(BaseModel):
    pet: Annotated[Cat | Dog, Field(discriminator="kind")]


def test_a_discriminators_mapping_follows_the_rename() -> None:
    document = document_of(("GET", "/pet", {"responses": {200: Pet}}))
    validate(document)
    pet = schemas(document)["Pet"]["properties"]["pet"]
    assert pet["discriminator"]["mapping"] == {"cat": REF + "Kitty", "dog": REF + "Dog"}
    assert {"$ref": REF + "Kitty"} in pet["oneOf"]
    assert "Cat" not in schemas(document)


class Shaped(BaseModel):
    """Its validation and serialization schemas differ: two components."""

    model_config = ConfigDict(title="Shape")

    width: int

    @computed_field
    @property
    def area(self) -> int:
        return self.width**2


def test_a_model_with_two_schemas_keeps_its_mode_suffixes() -> None:
    document = document_of(("POST", "/shapes", {"body": Shaped, "responses": {200: Shaped}}))
    assert {"Shape-Input", "Shape-Output"} <= schemas(document).keys()
    assert response_ref(document, "/shapes", "post", "200") == REF + "Shape-Output"
    assert "area" in schemas(document)["Shape-Output"]["properties"]
