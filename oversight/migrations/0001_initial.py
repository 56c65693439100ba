# Takes over audit.AnomalyFlag (audit 0005 dropped it from its state) without touching the database: the table
# audit_anomalyflag, its constraints and rows stay as they are.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0001_initial'),
        ('audit', '0005_anomalyflag_to_oversight'),
        ('orders', '0003_bids'),
        ('vouchers', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='AnomalyFlag',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                        ('kind', models.CharField(choices=[('related_party', 'Related-party booking'), ('price_above_median', 'Price far above the market median'), ('spend_velocity', 'Voucher drained right after issue'), ('split_booking', 'Split bookings dodging a per-booking cap'), ('export_controlled', 'Voucher spend on export-controlled hardware')], db_index=True, max_length=24)),
                        ('details', models.JSONField(blank=True, default=dict)),
                        ('status', models.CharField(choices=[('open', 'Open'), ('dismissed', 'Dismissed'), ('confirmed', 'Confirmed')], db_index=True, default='open', max_length=10)),
                        ('reviewed_at', models.DateTimeField(blank=True, null=True)),
                        ('review_note', models.TextField(blank=True)),
                        ('booking', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='orders.booking')),
                        ('organization', models.ForeignKey(blank=True, help_text='the buyer', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.organization')),
                        ('program', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='vouchers.voucherprogram')),
                        ('reviewer', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('voucher', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='vouchers.voucher')),
                    ],
                    options={
                        'db_table': 'audit_anomalyflag',
                        'ordering': ['-created_at', '-id'],
                        'constraints': [models.UniqueConstraint(fields=('kind', 'booking', 'voucher'), name='anomalyflag_unique_kind_booking_voucher', nulls_distinct=False), models.CheckConstraint(condition=models.Q(('kind__in', ['related_party', 'price_above_median', 'spend_velocity', 'split_booking', 'export_controlled'])), name='anomalyflag_kind_valid'), models.CheckConstraint(condition=models.Q(('status__in', ['open', 'dismissed', 'confirmed'])), name='anomalyflag_status_valid'), models.CheckConstraint(condition=models.Q(('booking__isnull', False), ('voucher__isnull', False), _connector='OR'), name='anomalyflag_has_subject'), models.CheckConstraint(condition=models.Q(('status', 'open'), ('reviewed_at__isnull', False), _connector='OR'), name='anomalyflag_reviewed_has_time')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
