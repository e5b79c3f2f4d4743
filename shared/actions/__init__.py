"""One module per action provider: config model, accepted credentials, rules and ``perform``.

``registry.py`` lists the providers; ``configs.py`` checks a step's ActionConfig against its model at
save time (API) and after rendering (executor); ``host.py`` is what a provider may ask of the process
that performs it (the executor implements it), so provider modules import nothing from ``services``.
"""
