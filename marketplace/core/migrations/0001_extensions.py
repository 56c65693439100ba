"""PostgreSQL extensions the apps rely on: btree_gist lets an exclusion constraint mix ``=`` and ``&&``."""

from django.contrib.postgres.operations import BtreeGistExtension
from django.db import migrations


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [BtreeGistExtension()]
