"""The ``lit-seg`` commands: training through LightningCLI and lit_seg's own tools. The library
(networks, data, training, evaluation) never imports from here."""
