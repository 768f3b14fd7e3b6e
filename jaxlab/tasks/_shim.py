"""TEMPORARY (replaced by jaxlab.models.build_model at merge)."""

from jaxlab.models import _REGISTRY, _field_names, get_model


def build_model(name, kwargs, **context):
    fields = _field_names(_REGISTRY[name]) if name in _REGISTRY else set()
    kw = dict(kwargs)
    for k, v in context.items():
        if k in fields and k not in kw:
            kw[k] = v
    return get_model(name, **kw)
