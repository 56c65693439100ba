"""Search columns on Listing: copies of the cluster's accelerator, GPUs per node and node count, the data centre's
city and operator, the chip's ``domestic`` flag, and the price per PFLOP-hour, kept in step by triggers; and the
partial indexes that cover every search filter, so a search never joins the cluster, data centre or accelerator.

The columns are added nullable, filled by the trigger (an UPDATE that touches every listing), then made NOT NULL
with ``db_default`` (so Django leaves them out of INSERTs and reads back what the trigger wrote).
"""

import django.db.models.deletion
from django.db import migrations, models

# One function computes the columns (BEFORE INSERT or UPDATE of the cluster, the price or a copied column: what
# Python writes there is overwritten). The AFTER UPDATE triggers on the cluster, data centre and accelerator touch
# the listings concerned (SET cluster_id = cluster_id), which runs that function again for each of them.
FORWARD = """
CREATE FUNCTION listings_listing_search_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    SELECT c.accelerator_id, d.city, d.operator, a.domestic, c.gpus_per_node, c.node_count,
           NEW.price_per_gpu_hour * 1000 / a.bf16_tflops
      INTO NEW.accelerator_id, NEW.city, NEW.operator, NEW.domestic, NEW.gpus_per_node, NEW.node_count,
           NEW.price_per_pflop_hour
      FROM listings_cluster c
      JOIN listings_datacenter d ON d.id = c.data_center_id
      JOIN listings_accelerator a ON a.id = c.accelerator_id
     WHERE c.id = NEW.cluster_id;
    RETURN NEW;
END
$$;

CREATE TRIGGER listing_search_columns
    BEFORE INSERT OR UPDATE OF cluster_id, price_per_gpu_hour, accelerator_id, city, operator, domestic,
                               gpus_per_node, node_count, price_per_pflop_hour
    ON listings_listing FOR EACH ROW EXECUTE FUNCTION listings_listing_search_columns();

CREATE FUNCTION listings_cluster_search_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE listings_listing SET cluster_id = cluster_id WHERE cluster_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER cluster_search_columns
    AFTER UPDATE OF data_center_id, accelerator_id, gpus_per_node, node_count ON listings_cluster
    FOR EACH ROW
    WHEN (OLD.data_center_id IS DISTINCT FROM NEW.data_center_id
          OR OLD.accelerator_id IS DISTINCT FROM NEW.accelerator_id
          OR OLD.gpus_per_node IS DISTINCT FROM NEW.gpus_per_node
          OR OLD.node_count IS DISTINCT FROM NEW.node_count)
    EXECUTE FUNCTION listings_cluster_search_columns();

CREATE FUNCTION listings_datacenter_search_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE listings_listing l SET cluster_id = l.cluster_id
      FROM listings_cluster c WHERE c.id = l.cluster_id AND c.data_center_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER datacenter_search_columns
    AFTER UPDATE OF city, operator ON listings_datacenter
    FOR EACH ROW
    WHEN (OLD.city IS DISTINCT FROM NEW.city OR OLD.operator IS DISTINCT FROM NEW.operator)
    EXECUTE FUNCTION listings_datacenter_search_columns();

CREATE FUNCTION listings_accelerator_search_columns() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE listings_listing l SET cluster_id = l.cluster_id
      FROM listings_cluster c WHERE c.id = l.cluster_id AND c.accelerator_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER accelerator_search_columns
    AFTER UPDATE OF domestic, bf16_tflops ON listings_accelerator
    FOR EACH ROW
    WHEN (OLD.domestic IS DISTINCT FROM NEW.domestic OR OLD.bf16_tflops IS DISTINCT FROM NEW.bf16_tflops)
    EXECUTE FUNCTION listings_accelerator_search_columns();

-- Fill the columns of the listings there are.
UPDATE listings_listing SET cluster_id = cluster_id;
"""

BACKWARD = """
DROP TRIGGER accelerator_search_columns ON listings_accelerator;
DROP FUNCTION listings_accelerator_search_columns();
DROP TRIGGER datacenter_search_columns ON listings_datacenter;
DROP FUNCTION listings_datacenter_search_columns();
DROP TRIGGER cluster_search_columns ON listings_cluster;
DROP FUNCTION listings_cluster_search_columns();
DROP TRIGGER listing_search_columns ON listings_listing;
DROP FUNCTION listings_listing_search_columns();
"""

CITY_CHOICES = [('Shanghai', 'Shanghai'), ('Beijing', 'Beijing'), ('Hangzhou', 'Hangzhou'), ('Shenzhen', 'Shenzhen'),
                ('Chengdu', 'Chengdu'), ('Wuhan', 'Wuhan'), ('Tianjin', 'Tianjin'), ('Suzhou', 'Suzhou'),
                ('Nanjing', 'Nanjing'), ('Guangzhou', 'Guangzhou'), ('Chongqing', 'Chongqing'), ('Hefei', 'Hefei'),
                ("Xi'an", "Xi'an"), ('Wuhu', 'Wuhu'), ('Kunming', 'Kunming'), ('Ningbo', 'Ningbo'),
                ('Qingdao', 'Qingdao')]
OPERATOR_CHOICES = [('state', 'State-owned'), ('private', 'Private cloud')]
PFLOP_HELP = ('price per GPU-hour / (BF16 TFLOPS / 1000); 10 places, so rounding it to fen equals rounding the exact '
              'quotient (a price has 4 places and TFLOPS 1)')


def columns(**final):
    """The search columns: nullable while they are filled, then as the model declares them."""
    extra = {"db_default": None} if final else {"null": True}
    return {
        "accelerator": models.ForeignKey(db_index=False, editable=False, on_delete=django.db.models.deletion.PROTECT,
                                         related_name='+', to='listings.accelerator', **extra),
        "city": models.CharField(choices=CITY_CHOICES, editable=False, max_length=32, **extra),
        "operator": models.CharField(choices=OPERATOR_CHOICES, editable=False, max_length=8, **extra),
        "domestic": models.BooleanField(editable=False, **extra),
        "gpus_per_node": models.PositiveSmallIntegerField(editable=False, **extra),
        "node_count": models.PositiveIntegerField(editable=False, **extra),
        "price_per_pflop_hour": models.DecimalField(decimal_places=10, editable=False, help_text=PFLOP_HELP,
                                                    max_digits=24, **extra),
    }


class Migration(migrations.Migration):

    dependencies = [
        ('listings', '0003_accelerator_catalog'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='listing',
            name='listing_active_window_idx',
        ),
        migrations.RemoveIndex(
            model_name='listing',
            name='listing_active_price_idx',
        ),
        *[migrations.AddField(model_name='listing', name=name, field=field) for name, field in columns().items()],
        migrations.RunSQL(FORWARD, BACKWARD),
        *[migrations.AlterField(model_name='listing', name=name, field=field)
          for name, field in columns(final=True).items()],
        migrations.AddIndex(
            model_name='listing',
            index=models.Index(condition=models.Q(('status', 'active')), fields=['available_from', 'available_until'], include=('id', 'price_per_gpu_hour', 'price_per_pflop_hour', 'min_hours', 'cluster', 'accelerator', 'city', 'operator', 'domestic', 'gpus_per_node', 'node_count'), name='listing_search_window_idx'),
        ),
        migrations.AddIndex(
            model_name='listing',
            index=models.Index(condition=models.Q(('status', 'active')), fields=['accelerator', 'available_from', 'available_until'], include=('id', 'price_per_gpu_hour', 'price_per_pflop_hour', 'min_hours', 'cluster', 'city', 'operator', 'domestic', 'gpus_per_node', 'node_count'), name='listing_search_chip_idx'),
        ),
        migrations.AddIndex(
            model_name='listing',
            index=models.Index(condition=models.Q(('status', 'active')), fields=['city', 'available_from', 'available_until'], include=('id', 'price_per_gpu_hour', 'price_per_pflop_hour', 'min_hours', 'cluster', 'accelerator', 'operator', 'domestic', 'gpus_per_node', 'node_count'), name='listing_search_city_idx'),
        ),
        migrations.AddIndex(
            model_name='listing',
            index=models.Index(condition=models.Q(('status', 'active')), fields=['price_per_gpu_hour', 'id'], include=('available_from', 'available_until', 'min_hours', 'cluster', 'accelerator', 'city', 'operator', 'domestic', 'gpus_per_node', 'node_count'), name='listing_search_price_idx'),
        ),
        migrations.AddIndex(
            model_name='listing',
            index=models.Index(condition=models.Q(('status', 'active')), fields=['price_per_pflop_hour', 'price_per_gpu_hour', 'id'], include=('available_from', 'available_until', 'min_hours', 'cluster', 'accelerator', 'city', 'operator', 'domestic', 'gpus_per_node', 'node_count'), name='listing_search_pflop_idx'),
        ),
    ]
