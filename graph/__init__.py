"""The social graph: the port `graph.port.SocialGraph` (the contract), its Cypher adapters
(`graph.falkordb_store`, `graph.neo4j_store` on `graph.cypher`) and `graph.factory.open_graph`.

Nothing is re-exported here: import from the module that defines a name.
"""
