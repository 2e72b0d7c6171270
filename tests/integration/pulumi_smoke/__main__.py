"""Smoke program: one file, managed by a Python dynamic provider.

Config: `kdrill-smoke:path` (where the file lives) and `kdrill-smoke:content` (what it
holds). Changing the content updates the file in place; changing the path replaces it.
"""

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider, UpdateResult


class FileProvider(ResourceProvider):
    """Serialised into the state by value and run by `pulumi-resource-pulumi-python`."""

    def create(self, props):
        import os

        os.makedirs(os.path.dirname(props["path"]), exist_ok=True)
        with open(props["path"], "w", encoding="utf-8") as f:
            f.write(props["content"])
        return CreateResult(
            id_=props["path"], outs={"path": props["path"], "content": props["content"]}
        )

    def diff(self, _id, olds, news):
        replaces = ["path"] if olds.get("path") != news.get("path") else []
        changed = bool(replaces) or olds.get("content") != news.get("content")
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=True)

    def update(self, _id, _olds, news):
        with open(news["path"], "w", encoding="utf-8") as f:
            f.write(news["content"])
        return UpdateResult(outs={"path": news["path"], "content": news["content"]})

    def delete(self, _id, props):
        import os

        if os.path.exists(props["path"]):
            os.remove(props["path"])


class SmokeFile(Resource):
    path: pulumi.Output[str]
    content: pulumi.Output[str]

    def __init__(self, name, path, content, opts=None):
        super().__init__(FileProvider(), name, {"path": path, "content": content}, opts)


config = pulumi.Config()
smoke = SmokeFile("smoke-file", path=config.require("path"), content=config.require("content"))
pulumi.export("path", smoke.path)
pulumi.export("content", smoke.content)
