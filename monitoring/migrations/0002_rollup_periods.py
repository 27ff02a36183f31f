# Roll-ups per hour beside those per minute, so long windows read 60 times fewer rows.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("callbacks", "0001_initial"),
        ("monitoring", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="attemptrollup", name="rollup_unique_key"),
        migrations.RemoveIndex(model_name="attemptrollup", name="rollup_tenant_minute_idx"),
        migrations.RenameField(model_name="attemptrollup", old_name="minute", new_name="period_start"),
        migrations.AddField(
            model_name="attemptrollup",
            name="period_minutes",
            field=models.PositiveSmallIntegerField(default=1),
        ),
        migrations.AddConstraint(
            model_name="attemptrollup",
            constraint=models.UniqueConstraint(
                fields=(
                    "period_minutes",
                    "period_start",
                    "tenant",
                    "queue",
                    "host",
                    "outcome",
                    "status_class",
                ),
                name="rollup_unique_key",
            ),
        ),
        migrations.AddIndex(
            model_name="attemptrollup",
            index=models.Index(
                fields=["tenant", "period_minutes", "period_start"], name="rollup_tenant_period_idx"
            ),
        ),
    ]
