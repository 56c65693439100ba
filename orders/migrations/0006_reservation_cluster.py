"""NodeReservation.cluster: a copy of the node's cluster, kept by triggers, and the period index including node and
cluster, so listing search counts busy nodes per cluster in a window by an index-only scan (it looked up each busy
node's cluster: most of the time of a ``min_gpus`` search over a long window).

The column is added nullable, filled (an UPDATE of every reservation's node_id runs the trigger), then made
NOT NULL with ``db_default`` (Django leaves it out of INSERTs; the trigger writes it).
"""

import django.contrib.postgres.indexes
import django.db.models.deletion
from django.db import migrations, models

FORWARD = """
CREATE FUNCTION orders_nodereservation_cluster() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT n.cluster_id INTO NEW.cluster_id FROM listings_node n WHERE n.id = NEW.node_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER nodereservation_cluster
    BEFORE INSERT OR UPDATE OF node_id, cluster_id ON orders_nodereservation
    FOR EACH ROW EXECUTE FUNCTION orders_nodereservation_cluster();

CREATE FUNCTION listings_node_reservation_cluster() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE orders_nodereservation SET cluster_id = NEW.cluster_id WHERE node_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER node_reservation_cluster
    AFTER UPDATE OF cluster_id ON listings_node
    FOR EACH ROW WHEN (OLD.cluster_id IS DISTINCT FROM NEW.cluster_id)
    EXECUTE FUNCTION listings_node_reservation_cluster();

-- Fill the column of the reservations there are.
UPDATE orders_nodereservation SET node_id = node_id;
"""

BACKWARD = """
DROP TRIGGER node_reservation_cluster ON listings_node;
DROP FUNCTION listings_node_reservation_cluster();
DROP TRIGGER nodereservation_cluster ON orders_nodereservation;
DROP FUNCTION orders_nodereservation_cluster();
"""


def cluster(**extra):
    return models.ForeignKey(db_index=False, editable=False, on_delete=django.db.models.deletion.PROTECT,
                             related_name='+', to='listings.cluster', **extra)


class Migration(migrations.Migration):

    dependencies = [
        ('listings', '0004_search_columns'),
        ('orders', '0005_open_order_limits'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='nodereservation',
            name='reservation_active_period_gist',
        ),
        migrations.AddField(model_name='nodereservation', name='cluster', field=cluster(null=True)),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.AlterField(model_name='nodereservation', name='cluster', field=cluster(db_default=None)),
        migrations.AddIndex(
            model_name='nodereservation',
            index=django.contrib.postgres.indexes.GistIndex(condition=models.Q(('active', True)), fields=['period'], include=('node', 'cluster'), name='reservation_active_period_gist'),
        ),
    ]
