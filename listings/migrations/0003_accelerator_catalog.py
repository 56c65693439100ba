"""Load the accelerator catalog (``listings.catalog.ACCELERATORS``)."""

from django.db import migrations


def load(apps, schema_editor):
    from listings.catalog import load_catalog

    load_catalog(apps.get_model("listings", "Accelerator"))


class Migration(migrations.Migration):

    dependencies = [
        ("listings", "0002_search_indexes"),
    ]

    operations = [
        migrations.RunPython(load, migrations.RunPython.noop),
    ]
