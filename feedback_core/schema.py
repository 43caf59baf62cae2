"""Table definitions (SQLAlchemy Core). Alembic migrations create them; this is the reference.

All timestamps are naive UTC ``DateTime`` columns; days are ``Date`` columns in UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    case,
    literal_column,
    null,
    text,
    true,
)

from feedback_core.policy import RETRACTED_NOTE

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger primary keys autoincrement on PostgreSQL, Integer is SQLite's rowid alias.
Id = BigInteger().with_variant(Integer, "sqlite")

movies = Table(
    "movies",
    metadata,
    Column("movie_id", Id, primary_key=True, autoincrement=False),
    Column("title", String(300), nullable=False),
    Column("genres", JSON, nullable=False, default=list),
    Column("cast", JSON, nullable=False, default=list),
    Column("franchise", String(200)),
    Column("year", Integer),
    Column("rating_count", Integer, nullable=False, default=0),
    Column("rating_sum", Float, nullable=False, default=0.0),
    Column("like_count", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("version_id", Id, primary_key=True),
    Column("parent_id", Id, ForeignKey("model_versions.version_id")),
    Column("status", String(16), nullable=False),  # candidate / active / retired
    # 1 while active, NULL otherwise: the unique index makes "exactly one active" a DB fact.
    Column("active_slot", Integer, unique=True),
    Column("trigger", String(16), nullable=False),  # its job's: initial / threshold / manual / retry
    Column("created_at", DateTime, nullable=False),
    Column("created_by", String(120), nullable=False),
    Column("activated_at", DateTime),
    Column("settings", JSON, nullable=False, default=dict),
    Column("weights", JSON, nullable=False, default=dict),
    Column("metrics", JSON, nullable=False, default=dict),
    Column("examples", JSON, nullable=False, default=dict),
    Column("accuracy", Float),
    Column("note", Text),
    CheckConstraint("status IN ('candidate','active','retired')", name="status"),
)

recommendation_sets = Table(
    "recommendation_sets",
    metadata,
    Column("recommendation_set_id", Id, primary_key=True),
    Column("user_id", Id, nullable=False),
    Column("model_version_id", Id, ForeignKey("model_versions.version_id")),
    Column("source", String(16), nullable=False),  # api / recommend / import / demo
    Column("created_at", DateTime, nullable=False),
    # The set's id in the system an imported file came from: re-importing skips known sets.
    Column("external_id", Id),
    Index("ix_recommendation_sets_user_created", "user_id", "created_at"),
    Index("ix_recommendation_sets_external_id", "external_id", unique=True),
)

impressions = Table(
    "impressions",
    metadata,
    Column("impression_id", Id, primary_key=True),
    Column(
        "recommendation_set_id",
        Id,
        ForeignKey("recommendation_sets.recommendation_set_id"),
        nullable=False,
    ),
    Column("user_id", Id, nullable=False),
    Column("movie_id", Id, ForeignKey("movies.movie_id"), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("predicted_score", Float, nullable=False),
    Column("model_version_id", Id, ForeignKey("model_versions.version_id")),
    Column("shown_at", DateTime, nullable=False),
    # False for an item shown without a score (a list posted as bare ids): its predicted_score
    # is a stored 0 that nothing may read as a prediction (migration 0011).
    Column("score_known", Boolean, nullable=False, server_default=true()),
    UniqueConstraint("recommendation_set_id", "movie_id", name="uq_impressions_set_movie"),
    Index("ix_impressions_user_shown", "user_id", "shown_at"),
)

user_dislikes = Table(
    "user_dislikes",
    metadata,
    Column("dislike_id", Id, primary_key=True),
    Column("user_id", Id, nullable=False),
    Column("movie_id", Id, ForeignKey("movies.movie_id"), nullable=False),
    Column("movie_title", String(300), nullable=False),
    Column("recommendation_set_id", Id, ForeignKey("recommendation_sets.recommendation_set_id")),
    Column("model_version_id", Id, ForeignKey("model_versions.version_id")),
    Column("predicted_score", Float, nullable=False),
    # False when nothing said what the model predicted (no score sent, none on its list): its
    # predicted_score is a stored 0, left out of every error (migration 0011).
    Column("score_known", Boolean, nullable=False, server_default=true()),
    Column("reason", String(32), nullable=False),
    Column("feedback_text", Text, nullable=False, default=""),
    Column("genres", JSON, nullable=False, default=list),
    Column("cast", JSON, nullable=False, default=list),
    Column("franchise", String(200)),
    Column("idempotency_key", String(200)),
    Column("created_at", DateTime, nullable=False),
    Column("retracted_at", DateTime),
    # Keys and lists are looked up only by value: most dislikes have neither, and stay out of
    # these two indexes (migration 0007). A key is unique per person.
    Index(
        "uq_user_dislikes_idempotency",
        "user_id",
        "idempotency_key",
        unique=True,
        sqlite_where=text("idempotency_key IS NOT NULL"),
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),
    Index(
        "ix_user_dislikes_set",
        "recommendation_set_id",
        sqlite_where=text("recommendation_set_id IS NOT NULL"),
        postgresql_where=text("recommendation_set_id IS NOT NULL"),
    ),
    Index("ix_user_dislikes_user_created", "user_id", "created_at", "dislike_id"),
    Index("ix_user_dislikes_user_movie", "user_id", "movie_id", "created_at"),
    Index("ix_user_dislikes_created", "created_at"),
)

retrain_jobs = Table(
    "retrain_jobs",
    metadata,
    Column("job_id", Id, primary_key=True),
    Column("status", String(16), nullable=False),  # queued / running / succeeded / failed
    # 1 while queued or running, NULL otherwise: at most one such job, enforced by the index.
    Column("active_slot", Integer, unique=True),
    Column("trigger", String(16), nullable=False),  # initial / threshold / manual / retry
    Column("requested_by", String(120), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    Column("heartbeat_at", DateTime),
    Column("worker_id", String(120)),
    Column("progress", Integer, nullable=False, default=0),
    Column("stage", String(120), nullable=False, default="queued"),
    Column("error", Text),
    Column("result_version_id", Id, ForeignKey("model_versions.version_id")),
    Column("examples_claimed", Integer, nullable=False, default=0),
    CheckConstraint("status IN ('queued','running','succeeded','failed')", name="status"),
    Index("ix_retrain_jobs_status", "status", "job_id"),
)

negative_examples = Table(
    "negative_examples",
    metadata,
    Column("example_id", Id, primary_key=True),
    Column("dislike_id", Id, ForeignKey("user_dislikes.dislike_id"), nullable=False, unique=True),
    Column("user_id", Id, nullable=False),
    Column("movie_id", Id, nullable=False),
    Column("weight", Float, nullable=False),
    Column("error", Float, nullable=False),
    Column("created_at", DateTime, nullable=False),
    # pending -> claimed (by a job) -> used (by a successful training); claimed -> pending on failure
    Column("status", String(16), nullable=False, default="pending"),
    Column("job_id", Id, ForeignKey("retrain_jobs.job_id")),
    Column("used_in_version_id", Id, ForeignKey("model_versions.version_id")),
    Column("used_at", DateTime),
    CheckConstraint("status IN ('pending','claimed','used')", name="status"),
    Index("ix_negative_examples_status", "status", "example_id"),
    Index("ix_negative_examples_error", "error"),
)

feature_adjustments = Table(
    "feature_adjustments",
    metadata,
    Column("adjustment_id", Id, primary_key=True),
    Column("dislike_id", Id, ForeignKey("user_dislikes.dislike_id"), nullable=False),
    Column("user_id", Id, nullable=False),
    Column("feature_type", String(16), nullable=False),  # genre / cast / franchise
    Column("feature_value", String(200), nullable=False),
    Column("proposed_magnitude", Float, nullable=False),
    Column("magnitude", Float, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("status", String(16), nullable=False, default="proposed"),
    Column("created_at", DateTime, nullable=False),
    Column("decided_by", String(120)),
    Column("decided_at", DateTime),
    Column("note", Text),
    Column("applied_at", DateTime),
    Column("reverted_at", DateTime),
    CheckConstraint("status IN ('proposed','approved','rejected','applied','reverted')", name="status"),
    CheckConstraint("feature_type IN ('genre','cast','franchise')", name="feature_type"),
    Index("ix_feature_adjustments_status", "status", "created_at"),
    # A person's applied adjustments only: proposals, the many, stay out of it (migration 0006).
    Index(
        "ix_feature_adjustments_applied",
        "user_id",
        sqlite_where=text("status = 'applied'"),
        postgresql_where=text("status = 'applied'"),
    ),
    Index("ix_feature_adjustments_user_created", "user_id", "created_at"),
    Index("ix_feature_adjustments_dislike", "dislike_id"),
    # The applied ones in the order they were decided (the Adjustments page's list; 0013).
    Index(
        "ix_feature_adjustments_applied_decided",
        "decided_at",
        "adjustment_id",
        sqlite_where=text("status = 'applied'"),
        postgresql_where=text("status = 'applied'"),
    ),
)

user_feature_weights = Table(
    "user_feature_weights",
    metadata,
    Column("user_id", Id, primary_key=True, autoincrement=False),
    Column("feature_type", String(16), primary_key=True),
    Column("feature_value", String(200), primary_key=True),
    Column("adjustment_sum", Float, nullable=False, default=0.0),
    Column("updated_at", DateTime, nullable=False),
)

movie_exclusions = Table(
    "movie_exclusions",
    metadata,
    Column("user_id", Id, primary_key=True, autoincrement=False),
    Column("movie_id", Id, ForeignKey("movies.movie_id"), primary_key=True, autoincrement=False),
    Column("dislike_id", Id, ForeignKey("user_dislikes.dislike_id")),
    Column("created_at", DateTime, nullable=False),
)

ratings = Table(
    "ratings",
    metadata,
    Column("user_id", Id, primary_key=True, autoincrement=False),
    Column("movie_id", Id, ForeignKey("movies.movie_id"), primary_key=True, autoincrement=False),
    Column("rating", Float, nullable=False),
    Column("rated_at", DateTime, nullable=False),
    Index("ix_ratings_rated_at", "rated_at"),
    Index("ix_ratings_movie", "movie_id"),
)

dislike_feedback_impact = Table(
    "dislike_feedback_impact",
    metadata,
    Column("impact_id", Id, primary_key=True),
    Column("dislike_id", Id, ForeignKey("user_dislikes.dislike_id")),
    Column("adjustment_id", Id, ForeignKey("feature_adjustments.adjustment_id")),
    Column("user_id", Id, nullable=False),
    Column("feature_type", String(16), nullable=False),
    Column("feature_value", String(200), nullable=False),
    Column("adjustment", Float, nullable=False),
    Column("weight_before", Float),
    Column("weight_after", Float),
    Column("model_version_id", Id, ForeignKey("model_versions.version_id")),
    Column("action", String(16), nullable=False, default="applied"),  # applied / reverted
    Column("actor", String(120), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_dislike_feedback_impact_user", "user_id", "created_at"),
    Index("ix_dislike_feedback_impact_dislike", "dislike_id"),
)

# Per-user aggregates, one row per (user, kind, value); kind is total/reason/genre/cast/franchise.
dislike_patterns = Table(
    "dislike_patterns",
    metadata,
    Column("user_id", Id, primary_key=True, autoincrement=False),
    Column("pattern_type", String(16), primary_key=True),
    Column("pattern_value", String(200), primary_key=True),
    Column("dislike_count", Integer, nullable=False, default=0),
    Column("score_sum", Float, nullable=False, default=0.0),  # of the known predicted scores
    Column("last_disliked_at", DateTime),
    # On SQLite a person's rows live together in the key's own tree (migration 0005).
    sqlite_with_rowid=False,
)

# Daily aggregates the dashboard reads. model_version_id 0 means "not attributed to a version".
daily_impressions = Table(
    "daily_impressions",
    metadata,
    Column("day", Date, primary_key=True),
    Column("model_version_id", Id, primary_key=True, autoincrement=False),
    Column("impressions", BigInteger, nullable=False, default=0),
    # The predicted scores of those shown with one, and how many: the mean score a version gave
    # what it showed, beside the mean it gave what was disliked (migration 0012).
    Column("score_sum", Float, nullable=False, server_default=text("0")),
    Column("scored", BigInteger, nullable=False, server_default=text("0")),
)

daily_dislikes = Table(
    "daily_dislikes",
    metadata,
    Column("day", Date, primary_key=True),
    Column("model_version_id", Id, primary_key=True, autoincrement=False),
    Column("reason", String(32), primary_key=True),
    # 1 for dislikes of a recorded impression (the numerator of a dislike rate), 0 otherwise.
    Column("attributed", Integer, primary_key=True, autoincrement=False),
    Column("dislikes", BigInteger, nullable=False, default=0),
    # Of those, the dislikes whose predicted score is known, and the sum of their scores: a
    # mean error is score_sum / scored (migration 0011).
    Column("score_sum", Float, nullable=False, default=0.0),
    Column("scored", BigInteger, nullable=False, server_default=text("0")),
)

# The dislikes per reason and genre, and their predicted scores: counted on the same day as
# daily_dislikes (a dislike of a list on the list's day), by version and reason, so that every
# panel of a page answers the same filters over the same dislikes (migration 0010).
daily_reason_genre = Table(
    "daily_reason_genre",
    metadata,
    Column("day", Date, primary_key=True),
    Column("model_version_id", Id, primary_key=True, autoincrement=False),
    Column("reason", String(32), primary_key=True),
    Column("genre", String(200), primary_key=True),
    Column("dislikes", BigInteger, nullable=False, default=0),
)

# Histogram of predicted scores of dislikes: bucket b holds scores in [b/10, (b+1)/10).
daily_score_histogram = Table(
    "daily_score_histogram",
    metadata,
    Column("day", Date, primary_key=True),
    Column("model_version_id", Id, primary_key=True, autoincrement=False),
    Column("reason", String(32), primary_key=True),
    Column("bucket", Integer, primary_key=True, autoincrement=False),
    Column("dislikes", BigInteger, nullable=False, default=0),
)

movie_dislike_stats = Table(
    "movie_dislike_stats",
    metadata,
    Column("movie_id", Id, primary_key=True, autoincrement=False),
    Column("dislikes", BigInteger, nullable=False, default=0),
    Column("high_score_dislikes", BigInteger, nullable=False, default=0),
    Column("score_sum", Float, nullable=False, default=0.0),
    Column("last_disliked_at", DateTime),
    Column("scored", BigInteger, nullable=False, server_default=text("0")),  # as daily_dislikes'
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("audit_id", Id, primary_key=True),
    Column("at", DateTime, nullable=False),
    Column("actor", String(120), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity_type", String(32), nullable=False),
    Column("entity_id", String(64)),
    Column("outcome", String(16), nullable=False, default="ok"),  # ok / denied
    Column("details", JSON, nullable=False, default=dict),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_actor", "actor", "at"),
    Index("ix_audit_log_action", "action", "at"),
    Index("ix_audit_log_entity", "entity_type", "entity_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Id, primary_key=True),
    Column("name", String(120), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
    Column("last_used_at", DateTime),
    CheckConstraint("role IN ('service','admin')", name="role"),
)

# Responses of HTTP requests sent with an Idempotency-Key, replayed on retry.
idempotent_requests = Table(
    "idempotent_requests",
    metadata,
    Column("scope", String(200), primary_key=True),
    Column("idempotency_key", String(200), primary_key=True),
    Column("status_code", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
)


def known_score(table: Table):
    """``table``'s predicted_score where it is known, else NULL, labelled predicted_score (an
    unknown score is stored as 0: it must never be read as one)."""
    return case((table.c.score_known, table.c.predicted_score), else_=null()).label("predicted_score")


def withdrawn(table: Table):
    """Whether a proposal of ``table`` (feature_adjustments or an alias) was withdrawn with its
    retracted dislike: stored as rejected with ``RETRACTED_NOTE``, it was decided by nobody.
    Constants, not bound values: PostgreSQL matches a GROUP BY's expression to the select's."""
    return and_(
        table.c.status == literal_column("'rejected'"),
        table.c.note.is_not_distinct_from(literal_column(f"'{RETRACTED_NOTE}'")),
    )
