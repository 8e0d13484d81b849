"""Slack installations (OAuth v2): slack_sdk's SQLAlchemy installation and OAuth state stores on the registry
database, every token encrypted at rest.

The tokens (bot, user, and their refresh tokens) go through `EncryptedToken`, a column type that encrypts on
write and decrypts on read with Fernet (AES-128-CBC and HMAC-SHA256) under a key derived by HKDF-SHA256 from
FLYWHEEL_SECRET_KEY: the table holds no usable token, and the stores' own queries work unchanged, since none
of them filters on a token. The tables' shape is slack_sdk's, with the token columns wide enough for the
ciphertext (a Fernet token is about 2.7 times its text); migration 0022 creates them.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine, MetaData, String, Table
from sqlalchemy.types import TypeDecorator

from store.errors import FlywheelError

TOKEN_COLUMNS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
TOKEN_LENGTH = 1000
BOTS, INSTALLATIONS, STATES = "slack_bots", "slack_installations", "slack_oauth_states"
STATE_SECONDS = 600  # an install link's state is good for ten minutes, once
_HKDF_INFO = b"flywheel slack tokens v1"  # a key of its own: the dashboard signs with the secret itself


class TokenKeyChanged(FlywheelError):
    pass


class TokenCipher:
    """Fernet under a key derived from the secret; rotating FLYWHEEL_SECRET_KEY means installing again."""

    def __init__(self, secret: bytes):
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, token: str) -> str:
        return self._fernet.encrypt(token.encode()).decode("ascii")

    def decrypt(self, stored: str) -> str:
        try:
            return self._fernet.decrypt(stored.encode("ascii")).decode()
        except InvalidToken:
            raise TokenKeyChanged("a stored Slack token can't be decrypted: FLYWHEEL_SECRET_KEY changed since the "
                                  "workspace installed Flywheel. Restore the old key, or install the app again "
                                  "in that workspace (/slack/install).") from None


class EncryptedToken(TypeDecorator[str]):
    """A token column: ciphertext in the table, the token in Python. Without a cipher (the schema's copy on
    Base.metadata, which only the migrations' check reads) it refuses to carry a value."""

    impl = String(TOKEN_LENGTH)
    cache_ok = True

    def __init__(self, cipher: TokenCipher | None = None):
        super().__init__()
        self.cipher = cipher

    def process_bind_param(self, value: str | None, dialect: object) -> str | None:
        if value is None:
            return None
        if self.cipher is None:
            raise TypeError("a Slack token column without a cipher")
        return self.cipher.encrypt(value)

    def process_result_value(self, value: str | None, dialect: object) -> str | None:
        if value is None:
            return None
        if self.cipher is None:
            raise TypeError("a Slack token column without a cipher")
        return self.cipher.decrypt(value)


def _encrypting(table: Table, cipher: TokenCipher | None) -> Table:
    for name in TOKEN_COLUMNS:
        if name in table.c:
            table.c[name].type = EncryptedToken(cipher)
    return table


def define_tables(metadata: MetaData, cipher: TokenCipher | None = None) -> tuple[Table, Table, Table]:
    """The bots, installations and OAuth states tables on `metadata`."""
    return (_encrypting(SQLAlchemyInstallationStore.build_bots_table(metadata, BOTS), cipher),
            _encrypting(SQLAlchemyInstallationStore.build_installations_table(metadata, INSTALLATIONS), cipher),
            SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, STATES))


class InstallationStore(SQLAlchemyInstallationStore):
    """slack_sdk's store on the registry's engine and tables, its tokens encrypted with `cipher`."""

    def __init__(self, *, client_id: str, engine: Engine, cipher: TokenCipher):
        self.cipher = cipher
        super().__init__(client_id=client_id, engine=engine, bots_table_name=BOTS,
                         installations_table_name=INSTALLATIONS)

    def build_bots_table(self, metadata: MetaData, table_name: str) -> Table:  # type: ignore[override]
        return _encrypting(SQLAlchemyInstallationStore.build_bots_table(metadata, table_name), self.cipher)

    def build_installations_table(self, metadata: MetaData, table_name: str) -> Table:  # type: ignore[override]
        return _encrypting(SQLAlchemyInstallationStore.build_installations_table(metadata, table_name), self.cipher)

    def create_tables(self) -> None:
        raise NotImplementedError("the registry's migrations create these tables (store/migrations)")

    def bot_for(self, team_id: str) -> Bot | None:
        """The workspace's bot installation, None when it never installed Flywheel or uninstalled it."""
        return self.find_bot(enterprise_id=None, team_id=team_id)

    def teams(self) -> list[str]:
        """The workspaces Flywheel is installed in now."""
        with self.engine.connect() as connection:
            rows = connection.execute(self.bots.select().with_only_columns(self.bots.c.team_id).distinct()
                                      .where(self.bots.c.client_id == self.client_id))
            return sorted(team for (team,) in rows if team)


def state_store(engine: Engine) -> SQLAlchemyOAuthStateStore:
    return SQLAlchemyOAuthStateStore(expiration_seconds=STATE_SECONDS, engine=engine, table_name=STATES)
