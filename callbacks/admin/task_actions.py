"""The buttons on a task's own page: retry now, cancel, replay a dead letter.

Each calls its service as the list's actions do, and says what happened (or why the service refused)
back on the task's page. Cancel and replay ask first on a page of their own, as Django asks before a
delete; retry acts at once, since it only brings the next attempt forward.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from callbacks.admin.common import actor
from callbacks.domain.vocabulary import RETRYABLE_STATUSES, UNFINISHED_STATUSES, ActorType, TaskStatus
from callbacks.errors import ApplicationError, ConflictError
from callbacks.models import CallbackTask
from callbacks.services.tasks import task_cancel, task_replay_dead, task_retry


def _retry(task: CallbackTask, request) -> str:
    task_retry(task=task, actor_type=ActorType.USER, actor=actor(request))
    return "Retried: the task is scheduled and goes out with the next claim."


def _cancel(task: CallbackTask, request) -> str:
    task_cancel(task=task, actor_type=ActorType.USER, actor=actor(request))
    return "Cancelled: the task will not be sent again."


def _replay(task: CallbackTask, request) -> str:
    if not task_replay_dead(task_ids=[task.pk], actor_type=ActorType.USER, actor=actor(request)):
        # The service replays what is dead and skips the rest; one task asked for by name is refused.
        current = CallbackTask.objects.values_list("status", flat=True).get(pk=task.pk)
        raise ConflictError(f"The task is {current}; only dead tasks can be replayed.", code="task_not_dead")
    return "Replayed: the dead letter is scheduled for one more attempt."


@dataclass(frozen=True)
class TaskAction:
    name: str
    label: str
    applies_to: tuple  # the statuses the action makes sense in; the button shows only then
    question: str  # asked on the confirmation page; "" acts at once
    run: Callable[[CallbackTask, object], str]


TASK_ACTIONS = {
    action.name: action
    for action in (
        TaskAction("retry", "Retry now", RETRYABLE_STATUSES, "", _retry),
        TaskAction(
            "cancel",
            "Cancel…",
            UNFINISHED_STATUSES,
            "Cancel this callback? It is not sent again; an attempt already under way may still arrive.",
            _cancel,
        ),
        TaskAction(
            "replay",
            "Replay…",
            (TaskStatus.DEAD,),
            "Send this dead letter again now? It gets one more attempt.",
            _replay,
        ),
    )
}


class TaskActionViews:
    """Mixed into the task's ModelAdmin: the action URLs, their views, and the buttons its page shows."""

    def has_operate_permission(self, request):
        return request.user.has_perm("callbacks.change_callbacktask")

    def task_action_urls(self):
        return [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(self.task_action_view),
                {"action": name},
                name=f"callbacks_callbacktask_{name}",
            )
            for name in TASK_ACTIONS
        ]

    def task_actions(self, request, task: CallbackTask) -> list[dict]:
        """The buttons for this task: the actions that apply to its status, for a user who may act."""
        if not self.has_operate_permission(request):
            return []
        return [
            {"action": action, "url": reverse(f"admin:callbacks_callbacktask_{name}", args=[quote(task.pk)])}
            for name, action in TASK_ACTIONS.items()
            if task.status in action.applies_to
        ]

    def task_action_view(self, request, object_id, action):
        task = self.get_object(request, unquote(object_id))
        if task is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_operate_permission(request):
            raise PermissionDenied
        chosen = TASK_ACTIONS[action]
        if request.method == "POST" and (not chosen.question or request.POST.get("confirm") == "yes"):
            return self._act(request, task, chosen)
        if not chosen.question:
            return HttpResponseNotAllowed(["POST"])
        context = {
            **self.admin_site.each_context(request),
            "title": f"{chosen.label.rstrip('…')} task {str(task.pk)[:8]}?",
            "opts": self.opts,
            "original": task,
            "action": chosen,
            "applies": task.status in chosen.applies_to,
            "task_url": _task_url(task),
        }
        return TemplateResponse(request, "admin/callbacks/callbacktask/action_confirmation.html", context)

    def _act(self, request, task: CallbackTask, chosen: TaskAction):
        try:
            self.message_user(request, chosen.run(task, request), messages.SUCCESS)
        except ApplicationError as exc:
            self.message_user(request, f"Refused: {exc.message}", messages.ERROR)
        return HttpResponseRedirect(_task_url(task))


def _task_url(task: CallbackTask) -> str:
    return reverse("admin:callbacks_callbacktask_change", args=[quote(task.pk)])
