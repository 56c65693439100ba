# AnomalyFlag moved to the oversight app (audit keeps only the event log): removed from audit's state here, its
# table kept; oversight 0001 takes it over (state only) and 0002 renames the table.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0004_anomaly_flag'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name='AnomalyFlag')],
            database_operations=[],
        ),
    ]
