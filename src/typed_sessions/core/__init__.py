"""The pure core: records, signing, results and the codec. No FastAPI, no I/O."""
