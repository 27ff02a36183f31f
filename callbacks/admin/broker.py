"""django-q2's own tables (its queued batches, schedules, successes and failures) for superusers only,
under "Broker internals" (Q_CLUSTER["label"]): operators look at callbacks, and a batch of ours in the
broker's queue says nothing about any one of them.

django-q2's ModelAdmins are kept as they are and re-registered with superuser-only permissions, so a
staff member given every permission neither sees them in the index nor opens their pages."""

from django.contrib import admin
from django_q import admin as django_q_admin  # noqa: F401  (registers django-q2's admins first)
from django_q.models import Failure, OrmQ, Schedule, Success


class SuperuserOnly:
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request, *args, **kwargs):
        return self.has_module_permission(request) and super().has_add_permission(request, *args, **kwargs)

    def has_change_permission(self, request, obj=None):
        return self.has_module_permission(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request) and super().has_delete_permission(request, obj)


for model in (Schedule, Success, Failure, OrmQ):
    if admin.site.is_registered(model):
        original = type(admin.site.get_model_admin(model))
        admin.site.unregister(model)
        admin.site.register(model, type(original.__name__, (SuperuserOnly, original), {}))
