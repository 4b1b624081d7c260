"""WebSocket close codes of this API (README "Guarantees and limits"), and what graphql-ws
clients do with each by default:
  4401 Unauthorized: the token at connection_init is missing, invalid, expired, revoked or of no
       account, or it stopped holding on an open socket (logOutEverywhere, expiry). Not retried:
       log in again.
  4429 Too many connections: the user already holds MAX_WS_CONNECTIONS_PER_USER sockets. Not
       retried: close another socket first (retrying blindly could not help).
  4406 Subprotocol not acceptable: only graphql-transport-ws is served; the deprecated legacy
       `graphql-ws` protocol is refused. Not retried.
  1013 Try again later: a backing service did not answer while the token was checked. Retried.
Strawberry's protocol codes keep their meaning (4400 bad message, 4408 no connection_init in
time, 4409 duplicate operation id, 4429 with reason "Too many initialisation requests").
"""

CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_MANY_CONNECTIONS = 4429
CLOSE_SUBPROTOCOL = 4406
CLOSE_TRY_AGAIN_LATER = 1013
