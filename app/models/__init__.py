"""Typed models, one module per aggregate; importing this package registers them all."""

from app.models.audit import AuditEntry, DataChange
from app.models.base import Base
from app.models.events import (
    Event,
    EventActor,
    EventCountry,
    EventLine,
    EventLink,
    EventSystem,
    Source,
    SourceFile,
)
from app.models.reference import Actor, Country, Origin, System
from app.models.staging import StagedImport
from app.models.users import ApiToken, LoginAttempt, User, UserSession
from app.models.watch import EventNote, FeedToken, SavedView, SavedViewOpen

__all__ = [
    "Actor",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Country",
    "DataChange",
    "Event",
    "EventActor",
    "EventCountry",
    "EventLine",
    "EventLink",
    "EventNote",
    "EventSystem",
    "FeedToken",
    "LoginAttempt",
    "Origin",
    "SavedView",
    "SavedViewOpen",
    "Source",
    "SourceFile",
    "StagedImport",
    "System",
    "User",
    "UserSession",
]
