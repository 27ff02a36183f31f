"""Queues exist before they are used: every queue already named by a task, a schedule's template or a
lane becomes declared (a QueueState row). `default` exists without one."""

from django.db import migrations


def declare_used_queues(apps, schema_editor):
    QueueState = apps.get_model("callbacks", "QueueState")
    CallbackTask = apps.get_model("callbacks", "CallbackTask")
    CallbackSchedule = apps.get_model("callbacks", "CallbackSchedule")
    Lane = apps.get_model("callbacks", "Lane")
    names = set(CallbackTask.objects.values_list("queue", flat=True).distinct())
    names |= set(Lane.objects.values_list("queue", flat=True).distinct())
    for template in CallbackSchedule.objects.values_list("task_template", flat=True).iterator():
        queue = template.get("queue") if isinstance(template, dict) else None
        if isinstance(queue, str) and queue:
            names.add(queue)
    known = set(QueueState.objects.values_list("name", flat=True))
    QueueState.objects.bulk_create(QueueState(name=name) for name in sorted(names - known))


class Migration(migrations.Migration):
    dependencies = [("callbacks", "0007_http2_tls_identity")]

    operations = [migrations.RunPython(declare_used_queues, migrations.RunPython.noop)]
