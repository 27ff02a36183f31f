from django.urls import path

from portal.views import setup, signin, stats, tasks

app_name = "portal"

# Ids are matched as plain strings: the tenant-scoped selectors answer a malformed id as a missing one (404).
urlpatterns = [
    path("", tasks.task_list_view, name="tasks"),
    path("login/<str:token>/", signin.signin_view, name="signin"),
    path("logout/", signin.signout_view, name="signout"),
    path("signed-out/", signin.signed_out_view, name="signed-out"),
    path("tasks/<str:task_id>/", tasks.task_view, name="task"),
    path("tasks/<str:task_id>/retry/", tasks.task_retry_view, name="task-retry"),
    path("tasks/<str:task_id>/cancel/", tasks.task_cancel_view, name="task-cancel"),
    path("replay/", tasks.replay_view, name="replay"),
    path("schedules/", setup.schedule_list_view, name="schedules"),
    path("schedules/<str:schedule_id>/", setup.schedule_view, name="schedule"),
    path("whitelist/", setup.whitelist_view, name="whitelist"),
    path("gone/", setup.gone_list_view, name="gone"),
    path("gone/<str:gone_id>/clear/", setup.gone_clear_view, name="gone-clear"),
    path("stats/", stats.stats_view, name="stats"),
]
