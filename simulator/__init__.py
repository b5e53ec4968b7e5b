"""Charge point simulator and eMSP sandbox: they speak OCPP and OCPI over the wire only."""
