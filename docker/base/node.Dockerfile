# Node 20 on Debian bookworm, built without an image registry by scripts/build-base-images.sh and
# tagged node:20-bookworm-slim, the name docker/Dockerfile starts from. Laid out like the official
# image: node, npm, npx and Node's C headers under /usr/local (node-gyp needs the headers), and a
# user `node` (uid/gid 1000). The context is prepared by the script: usr/local/ holds the official
# Node binary distribution (npm package node-linux-<arch>) and npm, and extra-ca.crt the CA bundle
# the build host trusts, so that npm inside the build can reach the registry through a
# TLS-intercepting proxy.
ARG DEBIAN_IMAGE
FROM ${DEBIAN_IMAGE}
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
COPY usr/local/ /usr/local/
COPY extra-ca.crt /etc/ssl/certs/xerotier-extra-ca.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/xerotier-extra-ca.crt
RUN node --version && npm --version
CMD ["node"]
