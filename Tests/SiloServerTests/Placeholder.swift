import SiloServer
