from django.core.management.base import BaseCommand, CommandError

from callbacks import queues
from callbacks.domain.vocabulary import ActorType
from callbacks.errors import ApplicationError
from callbacks.models import Tenant
from callbacks.services.queues import queue_create, queue_pause, queue_purge, queue_resume


class Command(BaseCommand):
    help = (
        "Queues: list them with their unfinished callbacks; create (declare) one, so callbacks may name it "
        "(start a cluster serving it: Q_CLUSTER_NAME=NAME manage.py qcluster); pause one (its callbacks "
        "wait, none is lost), resume, or purge it (cancel every callback waiting in it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["list", "create", "pause", "resume", "purge"])
        parser.add_argument("name", nargs="?", help="the queue (not for list)")
        parser.add_argument("--tenant", help="purge only this tenant's callbacks (its name)")

    def handle(self, *args, action, name, tenant, **options):
        if action == "list":
            self._list()
            return
        if not name:
            raise CommandError(f"queue {action} needs a queue name")
        try:
            if action == "create":
                _state, created = queue_create(name=name, actor_type=ActorType.USER, actor="manage.py")
                self.stdout.write(f"queue {name}: {'declared' if created else 'already declared'}")
            elif action == "purge":
                owner = self._tenant(tenant)
                count = queue_purge(name=name, tenant=owner, actor_type=ActorType.USER, actor="manage.py")
                self.stdout.write(f"queue {name}: {count} waiting callbacks cancelled")
            else:
                change = queue_pause if action == "pause" else queue_resume
                state = change(name=name, actor_type=ActorType.USER, actor="manage.py")
                self.stdout.write(f"queue {name}: {'paused' if state.paused else 'running'}")
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {exc.fields}") from None

    def _tenant(self, name):
        if name is None:
            return None
        tenant = Tenant.objects.filter(name=name).first()
        if tenant is None:
            raise CommandError(f"no tenant named {name!r}")
        return tenant

    def _list(self):
        self.stdout.write(
            f"{'queue':<24} {'state':<8} {'scheduled':>9} {'queued':>7} {'running':>7} {'retrying':>8}"
        )
        for queue in queues.queue_list():
            counts = queue["counts"]
            self.stdout.write(
                f"{queue['name']:<24} {'paused' if queue['paused'] else 'running':<8} {counts['scheduled']:>9} "
                f"{counts['queued']:>7} {counts['running']:>7} {counts['retrying']:>8}"
            )
