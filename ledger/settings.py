"""One settings object for the ledger, the API and the CLI, read from ``CIRCULAR_*`` environment variables."""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError, KeyNotFound


class Settings(BaseSettings):
    """Everything configurable. Defaults: the embedded chain and a SQLite file under ``data_dir``."""

    model_config = SettingsConfigDict(env_prefix="CIRCULAR_", extra="ignore")

    data_dir: Path = Field(
        Path(".circular"), description="Where the embedded chain, database, keys and deployments live."
    )
    rpc_url: str | None = Field(
        None, description="A JSON-RPC node (Anvil, Besu, geth, an L2); unset: the embedded chain."
    )
    chain_id: int | None = Field(None, description="The chain id the node must report; unset: not checked.")
    confirmations: int = Field(
        0,
        ge=0,
        description="Blocks on top of a transaction before it counts: an anchor's events as anchored, an API write as"
        " done (ledger.durable).",
    )
    db_url: str | None = Field(None, description="SQLAlchemy URL; unset: SQLite in data_dir.")
    resolver_base_url: str = Field("https://id.circular.example", description="Base URL of the Digital Link resolver.")
    batch_size: int = Field(1000, ge=1, le=100_000, description="Most events anchored under one Merkle root.")
    batch_max_wait_s: float = Field(2.0, ge=0, description="Longest a pending event waits for a fuller batch.")
    keystore_password: SecretStr | None = Field(None, description="Password of the encrypted keystore files.")
    run_worker_in_api: bool = Field(True, description="`circular serve` also runs the anchoring worker.")
    rpc_timeout_s: float = Field(30.0, gt=0, description="How long one JSON-RPC call may take before it is retried.")
    worker_max_backoff_s: float = Field(
        30.0, gt=0, description="Longest pause of the anchoring worker between retries while the node is unreachable."
    )

    archive_dir: Path | None = Field(
        None,
        description="The batch archive (signed events of every anchored batch, signed master data) that "
        "`circular rebuild` restores the database from; keep it apart from the database. Unset: data_dir/archive.",
    )
    archive_base_uri: str | None = Field(
        None, description="Public base URI of the archive, recorded in each anchor; unset: its file:// URI."
    )
    archive_enabled: bool = Field(True, description="Publish batches and master data to the archive.")

    @property
    def archive_path(self) -> Path:
        return self.archive_dir or self.data_dir / "archive"

    @property
    def chain_path(self) -> Path:
        return self.data_dir / "chain.sqlite"

    @property
    def deployments_dir(self) -> Path:
        return self.data_dir / "deployments"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{(self.data_dir / 'circular.sqlite').resolve()}"

    def actor_key(self, actor: str) -> LocalAccount:
        """The key of `actor`: env ``CIRCULAR_KEY_<ACTOR>`` (hex) or an encrypted keystore ``keys/<actor>.json``.

        Keys never appear in code, logs or error messages.
        """
        env_name = f"CIRCULAR_KEY_{actor.upper().replace('-', '_')}"
        if env_name in os.environ:
            try:
                account: LocalAccount = Account.from_key(os.environ[env_name])
                return account
            except (ValueError, TypeError):
                raise ConfigurationError(f"{env_name} does not hold a valid private key") from None
        path = self.keys_dir / f"{actor}.json"
        if not path.exists():
            raise KeyNotFound(f"no key for actor {actor!r}: set {env_name} or create {path}")
        if self.keystore_password is None:
            raise ConfigurationError("CIRCULAR_KEYSTORE_PASSWORD is needed to open keystore files")
        try:
            key = Account.decrypt(json.loads(path.read_text()), self.keystore_password.get_secret_value())
        except ValueError:
            raise ConfigurationError(f"cannot decrypt {path}: wrong password or corrupt file") from None
        decrypted: LocalAccount = Account.from_key(key)
        return decrypted

    def save_actor_key(self, actor: str, account: LocalAccount) -> Path:
        """Write `account` as a new encrypted keystore file (mode 0600). An existing keystore is never overwritten
        nor reused here: it is another account's key (``ConfigurationError``)."""
        if self.keystore_password is None:
            raise ConfigurationError("CIRCULAR_KEYSTORE_PASSWORD is needed to write keystore files")
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.keys_dir, 0o700)
        path = self.keys_dir / f"{actor}.json"
        encrypted = Account.encrypt(account.key, self.keystore_password.get_secret_value(), iterations=2**14)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise ConfigurationError(f"a keystore {path} exists already: it is never overwritten") from None
        with os.fdopen(fd, "w") as out:
            json.dump(encrypted, out)
        return path


__all__ = ["Settings"]
