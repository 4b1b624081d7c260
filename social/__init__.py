"""The product's rules: reading the home feed and deciding what a viewer may see, posting and
deleting tweets, following, accounts, text rules, uploads and the fan-out's decisions.

Functions and services here take their collaborators explicitly (stores, the graph port, the job
queue, settings values) and raise `social.errors` exceptions; they know nothing of GraphQL or of
the request. Decisions are pure functions over data fetched first (`social.visibility`,
`social.text`, `social.fanout_plan`), tested without servers.
"""
