"""Aspect sentiment: what a text says about each of its tenant's topics.

A text is cut into clauses (:mod:`.clauses`), each clause is given at most one topic by its
similarity to the topic's examples and its keywords (:mod:`.matching`), and the clauses of one
topic are scored together with the edge's own sentiment model (:mod:`.analyzer`). Topic sets are
held per tenant in a :class:`~edge_node.aspects.book.TopicBook`.
"""
