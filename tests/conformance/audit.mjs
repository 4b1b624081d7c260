// Runs the GraphQL-over-HTTP spec's server audit (graphql-http's auditServer) against the URL
// given as the only argument and prints one JSON line per audit: {id, name, status, reason}.
// tests/test_graphql_http.py runs it against a live API and judges the results.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql url>');
  process.exit(2);
}
const results = await auditServer({ url });
for (const result of results) {
  const line = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    line.reason = result.reason;
    line.httpStatus = result.response.status;
  }
  console.log(JSON.stringify(line));
}
