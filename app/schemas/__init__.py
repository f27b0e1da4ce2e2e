"""The pydantic models of the ``/api/v1`` contract, one module per resource.

They validate every request, shape every response, and are the OpenAPI
document's schemas: one definition for all three. Their names follow one
ladder, so a reader knows a model's direction from its name:

* ``...Create`` / ``...Update`` / ``...Query``: what a client sends (every one a
  :class:`~app.schemas.base.StrictModel`, which refuses unknown fields);
* ``...Out`` / ``...Page``: what the server answers.

A response model keeps the contract's name in the document through its
``title`` (``ArticleOut`` is the component ``Article``), so a generated client's
types do not change when a Python name does.

The services build and return these models; the cache stores them. Nothing
here imports the HTTP layer.
"""
