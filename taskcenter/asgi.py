import os

from django.core.asgi import get_asgi_application

from taskcenter.bootstrap import prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskcenter.settings")
prepare()  # var/, the secret key and the metrics directory, before the settings load
application = get_asgi_application()
