"""Customer Service staff portal: the Flask application factory."""

from pathlib import Path

from flask import Flask

from portal import formatting, htmx, logs, security
from portal.config import Config, load_config
from portal.db import verify_app_role
from portal.extensions import babel, csrf, db, limiter, login_manager, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Config | None = None) -> Flask:
    """Build the portal: settings, extensions, blueprints, error pages, commands."""
    app = Flask(
        __name__,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    register_config(app, config or load_config())
    register_extensions(app)
    register_blueprints(app)
    register_errors(app)
    register_commands(app)
    return app


def register_config(app: Flask, config: Config) -> None:
    """Load settings and refuse to start without the required ones."""
    missing = config.missing()
    if missing:
        raise RuntimeError(f"Missing required settings: {', '.join(missing)}")
    refusals = config.refusals()
    if refusals:
        raise RuntimeError(f"Refusing to start in production: {'; '.join(refusals)}")
    app.config.from_object(config)
    app.config["APP_DB_ROLE"] = config.APP_DB_ROLE
    logs.configure(app)


def register_extensions(app: Flask) -> None:
    """Bind the extensions and the per-request organization scope."""
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    csrf.init_app(app)
    babel.init_app(app)
    app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    limiter.init_app(app)
    login_manager.init_app(app)
    security.init_app(app)
    formatting.init_app(app)
    htmx.init_app(app)
    with app.app_context():
        verify_app_role(db.engine)


def register_blueprints(app: Flask) -> None:
    """One blueprint per feature."""
    from portal.api import bp as api_bp
    from portal.api import keys_bp
    from portal.auth import bp as auth_bp
    from portal.collections import bp as collections_bp
    from portal.credit import bp as credit_bp
    from portal.customers import bp as customers_bp
    from portal.events import bp as events_bp
    from portal.health import bp as health_bp
    from portal.mail import bp as mail_bp
    from portal.segments import bp as segments_bp
    from portal.settings import bp as settings_bp
    from portal.users import bp as users_bp
    from portal.webhooks import bp as webhooks_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(customers_bp, url_prefix="/customers")
    app.register_blueprint(credit_bp, url_prefix="/credit")
    app.register_blueprint(collections_bp, url_prefix="/collections")
    app.register_blueprint(events_bp)
    app.register_blueprint(segments_bp, url_prefix="/segments")
    app.register_blueprint(users_bp, url_prefix="/users")
    app.register_blueprint(settings_bp, url_prefix="/settings")
    app.register_blueprint(keys_bp, url_prefix="/settings/api-keys")
    app.register_blueprint(webhooks_bp, url_prefix="/settings/webhooks")
    app.register_blueprint(mail_bp, url_prefix="/dev/mail")


def register_errors(app: Flask) -> None:
    """Error pages in Spanish, never a stack trace."""
    from portal import errors

    errors.init_app(app)


def register_commands(app: Flask) -> None:
    """CLI: users, demo seed, worker helpers, audit chain verification."""
    from portal.audit_commands import audit_cli
    from portal.events.commands import events_cli
    from portal.seed import seed_demo_command
    from portal.users.commands import users_cli

    app.cli.add_command(audit_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(events_cli)
    app.cli.add_command(seed_demo_command)
