"""Send a test callback for a tenant: a real callback, made by the service every callback goes through
(whitelist, SSRF guard, signing and header rules apply), and its first attempt made at once by the
engine's own attempt path, so the page shows what the receiver answered."""

import json
import uuid

from django import forms
from django.contrib.admin.utils import quote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from callbacks import whitelist
from callbacks.admin.common import actor, add_service_errors
from callbacks.delivery.instruments.heartbeats import process_name
from callbacks.domain import encoding
from callbacks.domain.bounds import MAX_URL_LENGTH
from callbacks.domain.callback import clean_callback
from callbacks.domain.vocabulary import ActorType, BodyFormat, HttpMethod
from callbacks.errors import ApplicationError
from callbacks.masking import mask_headers, mask_text
from callbacks.models import CallbackTask, Tenant
from callbacks.selectors import execution_list
from callbacks.services.tasks import task_create

# Shown on the page; the whole stored body is on the attempt's page.
BODY_SHOWN = 4000
# Bodies typed as JSON text: the API takes these formats' bodies as JSON values.
JSON_BODIES = (BodyFormat.JSON, BodyFormat.FORM)


def _values(choices) -> list[tuple[str, str]]:
    return [(value, value) for value in choices.values]


class SendTestForm(forms.Form):
    """Checks what the service will check, with the domain's own rules; sending is the view's."""

    tenant = forms.ModelChoiceField(
        Tenant.objects.filter(is_active=True).order_by("name"),
        help_text="the callback is this tenant's: its whitelist, signing secret and retry policy apply",
    )
    url = forms.CharField(max_length=MAX_URL_LENGTH, label="URL", strip=False)
    method = forms.ChoiceField(choices=_values(HttpMethod), initial=HttpMethod.POST)
    body_format = forms.ChoiceField(choices=_values(BodyFormat), initial=BodyFormat.JSON)
    body = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "spellcheck": "false"}),
        help_text="json: a JSON value; form: a JSON object of field names to values; "
        "xml and raw: the text as sent. Empty: no body.",
    )

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        body = self._body(cleaned)
        if self.has_error("body"):
            return cleaned
        data = {
            "url": cleaned["url"],
            "method": cleaned["method"],
            "body_format": cleaned["body_format"],
            "body": body,
        }
        try:
            self.callback = clean_callback(data)
        except ApplicationError as exc:
            add_service_errors(self, exc)
            return cleaned
        denied = whitelist.creation_denial(tenant=cleaned["tenant"], urls=[self.callback["url"]])
        if denied:
            self.add_error("url", f"not on {cleaned['tenant']}'s whitelist: {denied[0]}")
        return cleaned

    def _body(self, cleaned):
        """The body as the API takes it: a JSON value for json and form, the text itself for xml and raw;
        None (no body) when nothing is typed."""
        text, body_format = cleaned.get("body", ""), cleaned["body_format"]
        if body_format not in JSON_BODIES:
            return text or None
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError as exc:
            self.add_error(
                "body", f"not valid JSON ({cleaned['body_format']} bodies are typed as JSON): {exc}"
            )
            return None


def send_test_view(model_admin, request):
    if not request.user.has_perm("callbacks.add_callbacktask"):
        raise PermissionDenied
    sent = _sent_task(request.GET.get("sent"))
    if request.method == "POST":
        form = SendTestForm(request.POST)
        if form.is_valid():
            # Imported here: every web process loads the admin at start, and the engine (its HTTP
            # stack, its metrics files) only when an operator sends a test callback.
            from callbacks.delivery import immediate

            try:
                result = immediate.create_and_send(
                    lambda: _create(form, request), worker=f"admin {process_name()}"
                )
            except ApplicationError as exc:  # what the form could not foresee (a whitelist changed meanwhile)
                add_service_errors(form, exc)
            else:
                url = reverse("admin:callbacks_callbacktask_send_test")
                return HttpResponseRedirect(f"{url}?sent={result.task.pk}")
    else:
        form = SendTestForm(initial=_again(sent) if sent else {"tenant": request.GET.get("tenant")})
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Send a test callback",
        "opts": model_admin.opts,
        "form": form,
        **(_result(sent) if sent and request.method == "GET" else {}),
    }
    return TemplateResponse(request, "admin/callbacks/callbacktask/send_test.html", context)


def _create(form: SendTestForm, request) -> CallbackTask:
    task, _created = task_create(
        tenant=form.cleaned_data["tenant"],
        data=form.callback,
        actor_type=ActorType.USER,
        actor=actor(request),
    )
    return task


def _sent_task(value) -> CallbackTask | None:
    try:
        task_id = uuid.UUID(str(value))
    except ValueError:
        return None
    return CallbackTask.objects.select_related("tenant").filter(pk=task_id).first()


def _again(task: CallbackTask) -> dict:
    """The form filled in as the test was sent, to send it again or change a field."""
    body = task.payload
    if task.body_format in JSON_BODIES and body:
        body = json.dumps(encoding.decode(body, task.body_format), indent=2, ensure_ascii=False)
    return {
        "tenant": task.tenant_id,
        "url": task.url,
        "method": task.method,
        "body_format": task.body_format,
        "body": body,
    }


def _result(task: CallbackTask) -> dict:
    execution = execution_list(task=task).first()
    shown = {"task": task, "task_url": reverse("admin:callbacks_callbacktask_change", args=[quote(task.pk)])}
    if execution is None:
        return shown
    body = mask_text(execution.response_body)
    return {
        **shown,
        "execution": execution,
        "request_headers": mask_headers(execution.request_headers),
        "response_headers": mask_headers(execution.response_headers),
        "response_body": body[:BODY_SHOWN],
        "body_cut": max(0, len(body) - BODY_SHOWN),
    }
