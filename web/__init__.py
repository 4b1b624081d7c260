"""The HTTP and WebSocket transports: GraphQL over HTTP as the spec asks, graphql-transport-ws,
persisted queries, cache headers, the local backend's signed uploads, the uvicorn launcher."""
