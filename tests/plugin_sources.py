"""Sources of fake plugins that more than one test file installs (with the ``fake_dist`` fixture)."""

#: an actuator whose hook method is misspelled (``magoo_on_wak``): it must fail when registered
LAMP_PLUGIN = '''
    from typing import ClassVar

    from magoo_core import Backend, BackendConfig, hookimpl


    class Lamp(Backend):
        """Lights up on the wake word."""

        name: ClassVar[str] = "lamp"

        class Config(BackendConfig):
            pass

        @hookimpl
        def magoo_on_wak(self, wake, turn):
            pass


    @hookimpl
    def magoo_register_actuators(register):
        register(Lamp)
'''
