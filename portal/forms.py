"""The portal's forms: they check what a tenant typed and say which field is wrong and why."""

from datetime import timedelta

from django import forms
from django.utils import timezone

from callbacks.domain.vocabulary import TaskStatus
from monitoring.selectors import parse_window

CREATED_WINDOWS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
MAX_PAGE = 200


class TaskFilterForm(forms.Form):
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        help_text="a task id or its first characters, part of the URL or host, a business id or trace id",
    )
    # The API's values (dead, retrying), as the badges spell them.
    status = forms.ChoiceField(
        required=False, choices=[("", "any status"), *((s.value, s.value) for s in TaskStatus)]
    )
    queue = forms.CharField(required=False, max_length=64)
    created = forms.ChoiceField(
        required=False,
        label="Created",
        choices=[("", "any time"), *((key, f"last {key}") for key in CREATED_WINDOWS)],
    )
    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE, widget=forms.HiddenInput)

    def filters(self) -> dict:
        data = self.cleaned_data
        created = CREATED_WINDOWS.get(data.get("created") or "")
        return {
            "status": data.get("status") or None,
            "queue": data.get("queue") or None,
            "created_after": timezone.now() - created if created else None,
        }


class ReplayForm(forms.Form):
    since = forms.CharField(
        required=False,
        max_length=10,
        help_text="only those that died in the last 30m, 6h, 2d ... (at most 7d); empty: all of them",
    )

    def clean_since(self):
        text = self.cleaned_data["since"].strip()
        if not text:
            return None
        try:
            return timezone.now() - parse_window(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class ReplayConfirmForm(forms.Form):
    """The confirmation's hidden fields: the moment `since` meant when the list was shown."""

    since_at = forms.DateTimeField(required=False, widget=forms.HiddenInput)
    confirm = forms.ChoiceField(choices=[("yes", "yes")])
