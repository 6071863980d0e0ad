# QuackML server image. Untested here: this machine has no Docker engine
# (see README, "Deployment").
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY catalog ./catalog
COPY automl ./automl
COPY inference ./inference
COPY examples ./examples
COPY quackml ./quackml
RUN pip install --no-cache-dir .
ENV QUACKML_HOST=0.0.0.0 \
    QUACKML_DATABASE=/data/quackml.duckdb \
    QUACKML_DATA_DIR=/data
VOLUME /data
EXPOSE 5433
CMD ["quackml", "serve"]
