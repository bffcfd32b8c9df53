"""Resource models: how the orchestrator creates, updates and deletes one resource type.

A model subclasses :class:`ResourceModel` and is registered with :func:`register` (or the
``@resource_type("AWS::X::Y")`` decorator). Types without a registered model fall back to moto's
own CloudFormation model for that type (:class:`MotoModel`), if moto has one; otherwise the
template is rejected like AWS rejects unknown types.

The orchestrator calls, on a worker thread (blocking is fine and expected):

* ``create(ctx) -> Resource``: make the resource; return its physical id and attributes.
* ``wait_ready(ctx, resource)``: *stabilization*. Block until the resource is usable (e.g. a
  CloudHSM cluster reaching UNINITIALIZED); raise :class:`ResourceFailed` to fail the resource
  with AWS's reason text. Use ``ctx.sleep(nominal_seconds)`` between polls (scaled clock) and
  ``ctx.cancelled()`` to stop early. The default returns at once.
* ``update(ctx, old) -> Resource``: apply ``ctx.properties`` (``ctx.old_properties`` were in
  force). Return a Resource with the *same* physical id for an in-place update, or a new one for
  a replacement (the orchestrator then deletes the old one in the cleanup phase, or the new one
  on rollback). The default replaces: ``create`` + ``wait_ready``.
* ``delete(ctx, resource)``: remove it; block until it is gone if AWS waits too.
* ``attribute(resource, name)``: ``Fn::GetAtt``; default reads ``resource.attributes``.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from emu import clock


class ResourceFailed(Exception):
    """The resource operation failed; the message becomes the event's ResourceStatusReason.

    ``resource``: what exists despite the failure (e.g. the physical id a FAILED custom resource
    response carried), so the rollback deletes it.
    """

    def __init__(self, reason: str, resource: "Resource | None" = None):
        super().__init__(reason)
        self.resource = resource


@dataclass
class Resource:
    physical_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    handle: Any = None  # the model's own object (e.g. the moto instance)


@dataclass
class Context:
    stack_name: str
    stack_id: str
    logical_id: str
    resource_type: str
    properties: dict[str, Any]
    account_id: str
    region: str
    old_properties: dict[str, Any] | None = None
    physical_name: str = ""  # generated name for types whose name property is absent
    cancel_event: threading.Event = field(default_factory=threading.Event)
    update_policy: dict[str, Any] = field(default_factory=dict)

    def sleep(self, nominal_seconds: float) -> None:
        """Sleep on the emulator's clock (nominal seconds); returns early if cancelled."""
        self.cancel_event.wait(clock.real_seconds(nominal_seconds))

    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


class ResourceModel:
    type_name: str = ""

    def create(self, ctx: Context) -> Resource:
        raise NotImplementedError

    def wait_ready(self, ctx: Context, resource: Resource) -> None:
        return None

    def update(self, ctx: Context, old: Resource) -> Resource:
        # Replacement: AWS generates a new name for the new physical resource.
        ctx.physical_name = f"{ctx.physical_name[:56]}-{uuid.uuid4().hex[:6].upper()}"
        new = self.create(ctx)
        self.wait_ready(ctx, new)
        return new

    def delete(self, ctx: Context, resource: Resource) -> None:
        return None

    def attribute(self, resource: Resource, name: str) -> Any:
        if name not in resource.attributes:
            raise ResourceFailed(f"Attribute '{name}' does not exist")
        return resource.attributes[name]


_registry: dict[str, ResourceModel] = {}


def register(type_name: str, model: ResourceModel) -> None:
    """Register (or replace) the model for a resource type."""
    model.type_name = type_name
    _registry[type_name] = model


def resource_type(type_name: str) -> Callable[[type], type]:
    """Class decorator: ``@resource_type("AWS::CloudHSM::Cluster") class Cluster(ResourceModel)``."""

    def decorate(cls: type) -> type:
        register(type_name, cls())
        return cls

    return decorate


def model_for(type_name: str) -> ResourceModel | None:
    if type_name in _registry:
        return _registry[type_name]
    if type_name.startswith("Custom::") or type_name == "AWS::CloudFormation::CustomResource":
        return _registry.get("AWS::CloudFormation::CustomResource")
    moto_class = _moto_class(type_name)
    if moto_class is not None:
        return MotoModel(type_name, moto_class)
    return None


def _moto_class(type_name: str) -> Any:
    from moto.cloudformation import parsing

    for cache in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cache.cache_clear()  # models added by our packages after the first call
    return parsing.get_model_map().get(type_name)


class MotoModel(ResourceModel):
    """Adapter onto moto's per-resource CloudFormation models."""

    def __init__(self, type_name: str, moto_class: Any):
        self.type_name = type_name
        self.moto_class = moto_class

    # moto models that read their name only from Properties (AWS generates one when absent).
    # Generated names follow AWS: "CFN-<logical id>-<random>" for parameters,
    # "<stack>-<logical id>-<random>" for documents.
    _NAME_FROM_PROPERTIES = {"AWS::SSM::Parameter": "Name", "AWS::SSM::Document": "Name"}

    def _json(self, ctx: Context) -> dict[str, Any]:
        properties = dict(ctx.properties)
        name_property = self._NAME_FROM_PROPERTIES.get(ctx.resource_type)
        if name_property and name_property not in properties:
            properties[name_property] = (
                f"CFN-{ctx.logical_id}-{ctx.physical_name[-12:]}"
                if ctx.resource_type == "AWS::SSM::Parameter" else ctx.physical_name)
        return {"Type": ctx.resource_type, "Properties": properties}

    def _name(self, ctx: Context) -> str:
        name_property = self.moto_class.cloudformation_name_type()
        if name_property and name_property in ctx.properties:
            return ctx.properties[name_property]
        return ctx.physical_name

    def create(self, ctx: Context) -> Resource:
        instance = self.moto_class.create_from_cloudformation_json(
            self._name(ctx), self._json(ctx), ctx.account_id, ctx.region,
            LogicalId=ctx.logical_id, StackId=ctx.stack_id, ResourceType=ctx.resource_type)
        instance.cf_resource_type = ctx.resource_type
        instance.logical_resource_id = ctx.logical_id
        physical_id = getattr(instance, "physical_resource_id", None) or ctx.physical_name
        return Resource(physical_id=str(physical_id), handle=instance)

    def wait_ready(self, ctx: Context, resource: Resource) -> None:
        is_created = getattr(resource.handle, "is_created", None)
        while is_created is not None and not is_created():
            if ctx.cancelled():
                return
            time.sleep(0.02)

    def update(self, ctx: Context, old: Resource) -> Resource:
        method = self.moto_class.update_from_cloudformation_json
        if getattr(method, "__isabstractmethod__", False):
            return super().update(ctx, old)
        instance = method(original_resource=old.handle, new_resource_name=self._name(ctx),
                          cloudformation_json=self._json(ctx), account_id=ctx.account_id,
                          region_name=ctx.region)
        instance.cf_resource_type = ctx.resource_type
        instance.logical_resource_id = ctx.logical_id
        return Resource(physical_id=str(instance.physical_resource_id), handle=instance)

    def delete(self, ctx: Context, resource: Resource) -> None:
        instance = resource.handle
        if instance is not None and hasattr(instance, "delete"):
            try:
                instance.delete(ctx.account_id, ctx.region)
                return
            except (TypeError, AttributeError):
                pass
        method = self.moto_class.delete_from_cloudformation_json
        if not getattr(method, "__isabstractmethod__", False):
            method(resource.physical_id, self._json(ctx), ctx.account_id, ctx.region)

    def attribute(self, resource: Resource, name: str) -> Any:
        if name in resource.attributes:
            return resource.attributes[name]
        if not self.moto_class.has_cfn_attr(name):
            raise ResourceFailed(f"Template error: resource attribute {name} is not supported "
                                 f"by {self.type_name}")
        return resource.handle.get_cfn_attribute(name)
