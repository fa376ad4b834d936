"""Customers' signed identities: a JWT the shop's site issues, checked at the handshake.

A shop that knows its customer (they are signed in) gives the widget a JWT,
which travels in the WebSocket's subprotocol offer (``chatbuddy.jwt.<JWT>``,
never the URL). The token is HS256 with a secret the shop shares with this
server, or RS256/ES256 with a key of the shop's JSON Web Key Set. Its ``sub``
becomes the connection's user (and proves it: an order whose ``customer`` is
that subject is given to them without an e-mail or postcode); ``exp`` is
required, and an open connection is closed when it passes (code 4004), so the
page fetches a fresh token. ``aud`` and ``iss`` are checked when configured.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import jwt

from chatbuddy.errors import (
    ConfigurationError,
    IdentityExpired,
    IdentityInvalid,
    IdentityRequired,
    IdentityUnavailable,
)
from chatbuddy.identity.jwks import (
    MIN_REFETCH_SECONDS,
    REFRESH_SECONDS,
    KeySet,
    KeysUnavailable,
)
from chatbuddy.text import is_valid_id

log = logging.getLogger(__name__)

#: The longest token looked at; a JWT with a handful of claims is well under 2 KiB.
MAX_TOKEN_CHARS = 8192
#: The shortest HS256 secret accepted: as long as the hash (RFC 7518, section 3.2).
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Identity:
    """A verified customer: who (``sub``) and until when (``exp``, Unix time)."""

    subject: str
    expires_at: float


class Identities:
    """Checks the signed identities a server accepts (none, when not configured)."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks_url: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        required: bool = False,
        leeway: float = 30.0,
        jwks_refresh: float = REFRESH_SECONDS,
        jwks_min_refetch: float = MIN_REFETCH_SECONDS,
    ) -> None:
        if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"the JWT secret is {len(secret.encode())} bytes; HS256 needs at least "
                f"{MIN_SECRET_BYTES} (e.g. `openssl rand -base64 48`)"
            )
        # The HS256 secret shared with the shop's site, if any.
        self._secret = secret
        # The shop's signing keys for RS256/ES256, if any.
        self.keys = (
            KeySet(jwks_url, refresh=jwks_refresh, min_refetch=jwks_min_refetch)
            if jwks_url
            else None
        )
        # Claims a token must carry with exactly these values (None: not checked).
        self._audience = audience
        self._issuer = issuer
        # Whether a customer without a token is refused.
        self.required = required
        # Seconds of clock difference forgiven (exp, nbf, iat).
        self.leeway = leeway
        # Whether a token offered to a server that checks none was logged yet.
        self._warned = False

    @property
    def enabled(self) -> bool:
        """Whether this server checks signed identities at all."""
        return self._secret is not None or self.keys is not None

    def start(self) -> None:
        if self.keys is not None:
            self.keys.start()

    async def close(self) -> None:
        if self.keys is not None:
            await self.keys.close()

    async def check(self, token: str | None) -> Identity | None:
        """The identity ``token`` proves; None for an anonymous customer.

        Raises IdentityRequired (no token, but one is required), IdentityInvalid
        or IdentityExpired (HTTP 401), IdentityUnavailable (503: the key set
        cannot be fetched). A token offered to a server that checks none is
        ignored (the customer is anonymous) and logged once.
        """
        if not self.enabled:
            if token is not None and not self._warned:
                self._warned = True
                log.warning(
                    "a client offered a signed identity, but this server checks none "
                    "(--jwt-secret-file, --jwt-jwks-url): its customers are anonymous"
                )
            return None
        if token is None:
            if self.required:
                raise IdentityRequired(
                    "this chat is for signed-in customers: offer a signed token as "
                    "chatbuddy.jwt.<token> in Sec-WebSocket-Protocol"
                )
            return None
        if len(token) > MAX_TOKEN_CHARS:
            raise IdentityInvalid(f"the signed token is over {MAX_TOKEN_CHARS} characters")
        key, algorithm = await self._key(token)
        claims = jwt_claims(
            token,
            key,
            algorithm=algorithm,
            audience=self._audience,
            issuer=self._issuer,
            leeway=self.leeway,
        )
        subject = claims["sub"]
        if not isinstance(subject, str) or not is_valid_id(subject):
            raise IdentityInvalid(
                "the token's sub must be 1-128 characters from A-Z a-z 0-9 _ . : - "
                "(it becomes the customer's user_id)"
            )
        return Identity(subject, float(claims["exp"]))

    async def _key(self, token: str) -> tuple[Any, str]:
        """The key to verify ``token`` with and the one algorithm it may be used with,
        chosen by the header's ``alg`` (and ``kid``) among those this server accepts:
        never ``none``, and never a public key as an HMAC secret."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise IdentityInvalid("the signed token is not a JWT") from None
        algorithm = header.get("alg")
        if algorithm == "HS256" and self._secret is not None:
            return self._secret, "HS256"
        if algorithm in ("RS256", "ES256") and self.keys is not None:
            kid = header.get("kid")
            try:
                found = await self.keys.key(kid if isinstance(kid, str) else None, algorithm)
                return found.key, algorithm
            except KeysUnavailable:
                raise IdentityUnavailable(
                    "the shop's signing keys cannot be fetched right now; retry shortly"
                ) from None
            except LookupError as missing:
                raise IdentityInvalid(str(missing)) from None
        accepted = ["HS256"] if self._secret is not None else []
        accepted += ["RS256", "ES256"] if self.keys is not None else []
        raise IdentityInvalid(
            f"the token is signed with {str(algorithm)[:20]!r}; this server accepts "
            f"{', '.join(accepted)}"
        )


def jwt_claims(
    token: str,
    key: Any,
    *,
    algorithm: str,
    audience: str | None,
    issuer: str | None,
    leeway: float,
) -> dict[str, Any]:
    """The claims of ``token`` once its signature (by ``key`` with ``algorithm``, the only
    one allowed), ``exp`` and the configured ``aud`` and ``iss`` check out;
    IdentityInvalid or IdentityExpired saying what did not."""
    required = ["exp", "sub"] + (["aud"] if audience else []) + (["iss"] if issuer else [])
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": required},
        )
    except jwt.ExpiredSignatureError:
        raise IdentityExpired("the signed token has expired; fetch a fresh one") from None
    except jwt.MissingRequiredClaimError as missing:
        raise IdentityInvalid(f"the signed token has no {missing.claim!r} claim") from None
    except jwt.InvalidAudienceError:
        raise IdentityInvalid(
            f"the token's audience (aud) is not {audience!r}"
            if audience
            else "the token has an audience (aud): start the server with --jwt-audience"
        ) from None
    except jwt.InvalidIssuerError:
        raise IdentityInvalid(f"the token's issuer (iss) is not {issuer!r}") from None
    except jwt.InvalidSignatureError:
        raise IdentityInvalid("the token's signature does not verify") from None
    except jwt.ImmatureSignatureError:
        raise IdentityInvalid("the signed token is not valid yet (nbf or iat)") from None
    except jwt.PyJWTError as error:
        raise IdentityInvalid(f"the signed token is not valid: {error}") from None
    return claims
