"""django-q2's own tables: superusers only, under "Broker internals"; a staff member with every permission
sees none of them and cannot open them."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse

pytestmark = pytest.mark.django_db

MODELS = ("failure", "success", "schedule", "ormq")


@pytest.fixture
def staff_client(client):
    staff = get_user_model().objects.create_user("staff", password="pw", is_staff=True)
    staff.user_permissions.set(Permission.objects.all())
    client.force_login(staff)
    return client


def test_a_staff_member_with_every_permission_sees_no_broker_table(staff_client):
    html = staff_client.get(reverse("admin:index")).content.decode()

    assert "/admin/django_q/" not in html
    assert "Broker internals" not in html and "Django Q" not in html
    assert "/admin/callbacks/callbacktask/" in html  # the staff member does see ours
    assert staff_client.get("/admin/django_q/").status_code == 404
    for model in MODELS:
        for url in (reverse(f"admin:django_q_{model}_changelist"), reverse(f"admin:django_q_{model}_add")):
            assert staff_client.get(url).status_code == 403, url


def test_a_superuser_finds_them_under_broker_internals(admin_client):
    response = admin_client.get(reverse("admin:index"))

    apps = {app["app_label"]: app for app in response.context["app_list"]}
    assert apps["django_q"]["name"] == "Broker internals"
    assert {model["object_name"] for model in apps["django_q"]["models"]} == {
        "Failure",
        "Success",
        "Schedule",
        "OrmQ",
    }
    for model in MODELS:
        assert admin_client.get(reverse(f"admin:django_q_{model}_changelist")).status_code == 200
