"""Typed models, one module per aggregate; importing this package registers them all."""

from app.models.audit import AuditEntry, DataChange
from app.models.base import Base
from app.models.events import Event, EventActor, EventCountry, EventLine, EventSystem, Source, SourceFile
from app.models.reference import Actor, Country, System
from app.models.staging import StagedImport
from app.models.users import ApiToken, LoginAttempt, User, UserSession

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
    "EventSystem",
    "LoginAttempt",
    "Source",
    "SourceFile",
    "StagedImport",
    "System",
    "User",
    "UserSession",
]
