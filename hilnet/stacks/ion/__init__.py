"""NASA's ION (4.1.3) as a node's stack: rc files, namespaces, watch tokens and log -> hilnet events."""

from hilnet.stacks.ion.driver import IonDriver

DRIVER = IonDriver
