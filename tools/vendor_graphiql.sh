#!/usr/bin/env bash
# Re-vendor the GraphiQL page's assets from the npm registry into static/graphiql/ (with licences),
# so the explorer works on machines without internet. Run by hand when bumping versions.
set -euo pipefail
GRAPHIQL=3.9.0 REACT=18.3.1
dest="$(cd "$(dirname "$0")/.." && pwd)/static/graphiql"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null
mkdir -p "$dest"
tar xzf "graphiql-$GRAPHIQL.tgz" package/graphiql.min.js package/graphiql.min.css package/LICENSE
cp package/graphiql.min.js package/graphiql.min.css "$dest/"; cp package/LICENSE "$dest/LICENSE.graphiql"
rm -rf package; tar xzf "react-$REACT.tgz" package/umd/react.production.min.js package/LICENSE
cp package/umd/react.production.min.js "$dest/"; cp package/LICENSE "$dest/LICENSE.react"
rm -rf package; tar xzf "react-dom-$REACT.tgz" package/umd/react-dom.production.min.js package/LICENSE
cp package/umd/react-dom.production.min.js "$dest/"; cp package/LICENSE "$dest/LICENSE.react-dom"
echo "graphiql@$GRAPHIQL react@$REACT react-dom@$REACT" > "$dest/VERSIONS"
