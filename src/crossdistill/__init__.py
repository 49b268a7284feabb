"""crossdistill: distil a cross-encoder reranker into a fast bi-encoder retriever."""
from crossdistill.configs.resolvers import register_resolvers

register_resolvers()
