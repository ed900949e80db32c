# A stand-in for the official python:<version>-slim, which cannot be pulled here: Debian's Python from a
# debootstrap root (tests/compose/images.py), with what the Dockerfiles expect of the official image on PATH
# (`python`, `pip`) and this machine's CA bundle, without which nothing in a container reaches PyPI.
ARG BASE
FROM ${BASE}
ARG PYTHON
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN python${PYTHON} -m venv /usr/local/py
ENV PATH=/usr/local/py/bin:$PATH \
    LANG=C.UTF-8 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
LABEL org.gozon.stand-in="python:${PYTHON}-slim"
CMD ["python3"]
